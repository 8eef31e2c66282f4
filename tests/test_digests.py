"""The video digest: ``video.processing.completed`` events batched per user into one digest run, on a real
dev server, a real worker and real SQLite."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from activities.digests import DigestActivities, DigestRequest, VideoDigestRow
from longhaul.storage import RunStore
from longhaul.workflows.catalog import Catalog
from tests.apps import wait_for_status
from workflows.digests import DIGESTS

CATALOG = Catalog(DIGESTS)


@pytest.fixture
def catalog() -> Catalog:
    """What the ``api`` fixture serves: the digest pipeline alone."""
    return CATALOG


def _completed(video_id: str, user_id: str) -> dict[str, object]:
    analysis = {"scene_changes": 0, "scene_times": [], "loudness_lufs": None, "loudness_range_lu": None,
                "black_segments": [], "silent_segments": []}  # fmt: skip
    return {"video_id": video_id, "user_id": user_id, "duration": 4.0, "renditions": [], "skipped": [],
            "thumbnails": [], "analysis": analysis}  # fmt: skip


async def test_videos_of_one_user_finishing_together_make_one_digest(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    ann, bob = f"ann-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    sent = []
    for video_id, user in (("v1", ann), ("v2", bob), ("v3", ann), ("v4", ann)):
        answer = await api.post(
            "/api/events/video.processing.completed", json={"payload": _completed(video_id, user)}
        )
        assert answer.status_code == 202, answer.text
        sent.append(answer.json()["runs"][0])
    assert [run["via"] for run in sent] == ["start", "start", "batch", "batch"]
    ann_run, bob_run = sent[0]["run_id"], sent[1]["run_id"]
    assert sent[2]["run_id"] == sent[3]["run_id"] == ann_run

    done = await wait_for_status(api, ann_run, "completed")
    assert done["output"]["message"] == "3 videos ready: v1, v3, v4 (12 s in all)"
    assert (await wait_for_status(api, bob_run, "completed"))["output"]["videos"] == 1
    async with store.db.sessions() as session:
        users = list(
            await session.scalars(
                select(VideoDigestRow.user_id).where(VideoDigestRow.user_id.in_([ann, bob]))
            )
        )
    assert sorted(users) == sorted([ann, bob])


async def test_a_digest_step_done_again_writes_the_digest_once(store: RunStore) -> None:
    activities = DigestActivities(store.db)
    request = DigestRequest(
        tenant="t", run_id=f"run_{uuid.uuid4().hex[:8]}", user_id="u", video_ids=["a"], seconds=2
    )
    first, again = await activities.record(request), await activities.record(request)
    assert (first.written, again.written) == (True, False)
    assert first.message == again.message == "1 video ready: a (2 s in all)"
