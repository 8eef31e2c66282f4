"""Workflows and a catalog that exercise the events core: fan-out, signal routing, progress, failure.

Kept free of test-framework imports: Temporal's sandbox re-imports this module for every workflow run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.hello import HELLO, HelloRequested
    from activities.video.models import VIDEO_COMPLETED, VIDEO_FAILED
    from longhaul.activities.streams import stream
    from longhaul.events import EventPayload, EventType

from longhaul.workflows import registry
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.children import ChildRunFailedError, batch_trigger_and_wait, trigger_and_wait
from longhaul.workflows.metadata import metadata
from longhaul.workflows.pipeline import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    FairShare,
    Pipeline,
    RateLimit,
    SignalRoute,
    Singleton,
    Subscription,
    TaskQueue,
    Throttle,
    WaitpointKind,
)
from longhaul.workflows.tracking import log, progress, task_queue, tracked
from longhaul.workflows.waitpoints import wait_for_token
from workflows.hello import HELLO_PIPELINE, HelloWorkflow
from workflows.video import VIDEO


class ApprovalRequested(EventPayload):
    document_id: str = Field(min_length=1)
    title: str


class ApprovalDecided(EventPayload):
    document_id: str
    approved: bool
    by: str


class Reported(EventPayload):
    """What :class:`ReportingWorkflow` counts into its metadata; ``oversize`` sets a value past the cap;
    ``typed`` declares the metadata's shape (:class:`ReportShape`), which ``bad_phase`` breaks."""

    items: int = Field(ge=0, le=20)
    oversize: bool = False
    typed: bool = False
    bad_phase: bool = False


class ReportShape(BaseModel):
    """The shape a typed reporting run declares for its metadata."""

    model_config = ConfigDict(extra="forbid")

    phase: Literal["counting", "done"] = "counting"
    counted: int = 0
    seen: list[str] = Field(default_factory=list)


class ReportDone(BaseModel):
    phase: Literal["done"] = "done"


class Counted(EventPayload):
    steps: int = Field(ge=1, le=20)
    pause_seconds: float = Field(default=0.3, ge=0)


class GateRequested(EventPayload):
    gate: str


class LimitedWork(EventPayload):
    """Work keyed by ``key``, whose subscriptions limit it (concurrency, rate, throttle per key)."""

    key: str = Field(min_length=1, max_length=50)
    seconds: float = Field(default=0.2, ge=0, le=60)


APPROVAL_REQUESTED = EventType("approval.requested", 1, ApprovalRequested)
APPROVAL_DECIDED = EventType("approval.decided", 1, ApprovalDecided)
COUNT = EventType("count.requested", 1, Counted)
REPORTED = EventType("report.requested", 1, Reported)
GATE = EventType("gate.requested", 1, GateRequested)
LIMITED = EventType("limited.work", 1, LimitedWork)  # at most 2 at once per key
SOLO = EventType("solo.work", 1, LimitedWork)  # at most 1 at once per key
RATED = EventType("rated.work", 1, LimitedWork)  # at most 2 starts per 2 s per key
THROTTLED = EventType("throttled.work", 1, LimitedWork)  # 2 per 2 s, evenly: one a second
SINGLE = EventType("single.work", 1, LimitedWork)  # one open run per key; more are skipped
REPLACING = EventType("replacing.work", 1, LimitedWork)  # one open run per key; a new one cancels it
CANCELLABLE = EventType("cancellable.work", 1, LimitedWork)  # cancelled by stop.work of its key
STOP = EventType("stop.work", 1, LimitedWork)
DEBOUNCED = EventType("debounced.work", 1, LimitedWork)  # quiet 1 s, at most 3 s; last payload
LEADING = EventType("leading.work", 1, LimitedWork)  # quiet 1 s; first payload
SLOW_DEBOUNCED = EventType("slow.debounced.work", 1, LimitedWork)  # quiet 1 h, at most 6 h (a moved clock)
BATCHED = EventType("batched.work", 1, LimitedWork)  # 3 per run, or what came within 1.5 s
COLLECTED = EventType("collected.work", 1, LimitedWork)  # quiet 1 s; every event, at most 3 per run
FILTERED = EventType("filtered.work", 1, LimitedWork)  # only a vip key's work of more than half a second
FAIR = EventType("fair.work", 1, LimitedWork)  # tenants take turns
REFUSED = EventType("refused.work", 1, LimitedWork)  # at most 2 events per 2 s per key; more: 429


class WorkBatch(BaseModel):
    events: list[LimitedWork]
    event_ids: list[str]


class Verdict(BaseModel):
    """What completes a review token (the test pipeline's waitpoint kind)."""

    approved: bool
    reason: str | None = Field(default=None, max_length=200)


REVIEW = WaitpointKind("test.review", Verdict, "a reviewer's verdict")


class ReviewAsked(EventPayload):
    document_id: str
    timeout_seconds: float = 60


REVIEW_ASKED = EventType("review.asked", 1, ReviewAsked)


class Decision(BaseModel):
    approved: bool
    by: str


@registry.defn(name="hello-audit")
class HelloAuditWorkflow:
    """A second subscriber of ``hello``: fan-out."""

    @workflow.run
    async def run(self, event: HelloRequested) -> str:
        return await tracked(self._audit(event))

    async def _audit(self, event: HelloRequested) -> str:
        await log(f"audited greeting for {event.name}")
        return f"audited {event.name}"


@registry.defn(name="approval")
class ApprovalWorkflow:
    """Human in the loop: waits (durably, up to a day) for the ``approval.decided`` signal."""

    def __init__(self) -> None:
        self.decision: Decision | None = None

    @workflow.run
    async def run(self, event: ApprovalRequested) -> Decision:
        return await tracked(self._wait(event))

    async def _wait(self, event: ApprovalRequested) -> Decision:
        await progress(10, f"waiting for a decision on {event.title}")
        await workflow.wait_condition(lambda: self.decision is not None, timeout=timedelta(days=1))
        assert self.decision is not None
        return self.decision

    @registry.signal(name="approval.decided")
    async def decided(self, decision: ApprovalDecided) -> None:
        if self.decision is None:  # the first decision wins
            self.decision = Decision(approved=decision.approved, by=decision.by)

    @workflow.query
    def pending(self) -> bool:
        return self.decision is None


@registry.defn(name="review")
class ReviewWorkflow:
    """Waits for a review token (twice when the first is rejected: a second token of the same run)."""

    @workflow.run
    async def run(self, asked: ReviewAsked) -> dict[str, Any]:
        return await tracked(self._review(asked))

    async def _review(self, asked: ReviewAsked) -> dict[str, Any]:
        await progress(10, f"waiting for a review of {asked.document_id}")
        timeout = timedelta(seconds=asked.timeout_seconds)
        rounds = []
        for _ in range(2):
            result = await wait_for_token(
                REVIEW,
                timeout=timeout,
                description=f"review {asked.document_id}",
                tags=[f"doc:{asked.document_id}"],
            )
            rounds.append(
                {
                    "token": result.token.id,
                    "status": result.token.status.value,
                    "by": result.token.completed_by,
                    "verdict": result.output.model_dump() if result.output else None,
                }
            )
            if not result.ok or result.output is None or result.output.approved:
                break
        return {"rounds": rounds}


@registry.defn(name="limited-work")
class LimitedWorkflow:
    """Takes ``seconds`` (a durable timer): what the flow-control tests limit."""

    @workflow.run
    async def run(self, work: LimitedWork) -> str:
        return await tracked(self._work(work))

    async def _work(self, work: LimitedWork) -> str:
        await workflow.sleep(timedelta(seconds=work.seconds))
        return work.key


@registry.defn(name="work-batch")
class WorkBatchWorkflow:
    """Receives a batch of events: answers their keys and seconds, in arrival order."""

    @workflow.run
    async def run(self, batch: WorkBatch) -> list[str]:
        return await tracked(self._each(batch))

    async def _each(self, batch: WorkBatch) -> list[str]:
        return [f"{work.key}:{work.seconds:g}" for work in batch.events]


@registry.defn(name="count")
class CountWorkflow:
    """Reports progress step by step, with durable pauses in between."""

    @workflow.run
    async def run(self, event: Counted) -> int:
        return await tracked(self._count(event))

    async def _count(self, event: Counted) -> int:
        for step in range(1, event.steps + 1):
            await workflow.sleep(timedelta(seconds=event.pause_seconds))
            await progress(step * 100 // (event.steps + 1), f"step {step} of {event.steps}")
        return event.steps


@registry.defn(name="reporting")
class ReportingWorkflow:
    """Reports itself through run metadata: set, increment and append, with timers in between."""

    @workflow.run
    async def run(self, event: Reported) -> dict[str, Any]:
        return await tracked(self._report(event))

    async def _report(self, event: Reported) -> dict[str, Any]:
        if event.typed:
            metadata.declare(ReportShape)
        metadata.set("phase", "counting")
        for item in range(event.items):
            await workflow.sleep(timedelta(milliseconds=300))
            metadata.increment("counted")
            metadata.append("seen", f"item-{item}")
        if event.oversize:
            metadata.set("blob", "x" * 70_000)
        if event.bad_phase:
            metadata.set("phase", "exploded")
        if event.typed:
            metadata.update(ReportDone())
        else:
            metadata.set("phase", "done")
        return metadata.current()


OPEN_GATES: set[str] = set()
STEP = timedelta(seconds=30)
FIXED: set[str] = set()  # keys whose "bug" the test has fixed (as a deploy of the fix would)
RAN: list[str] = []  # every execution of the resumable workflow's steps, in order
EFFECTS: list[str] = []  # their effects: once per step, however often it ran (they are idempotent)


class ResumeAsked(EventPayload):
    key: str
    local: bool = False  # the fragile step as a local activity
    compensate: bool = False  # on failure, undo the first step (a step that runs after the failure)


RESUME_ASKED = EventType("resume.asked", 1, ResumeAsked)


@activity.defn(name="tests.record_step")
async def record_step(step: str) -> str:
    """Idempotent, as every activity must be: a step done before finds its effect."""
    RAN.append(step)
    if step not in EFFECTS:
        EFFECTS.append(step)
    return step


@activity.defn(name="tests.fragile_step")
async def fragile_step(key: str) -> str:
    """Fails for good until the test fixes it: a bug, then its fix."""
    if key not in FIXED:
        raise ApplicationError(f"bug in the fragile step of {key}", non_retryable=True)
    RAN.append(f"fragile:{key}")
    EFFECTS.append(f"fragile:{key}")
    return f"fragile:{key}"


@activity.defn
async def pass_gate(gate: str) -> str:
    """Fails for good unless the test opened the gate: a run that fails, then succeeds on replay."""
    if gate not in OPEN_GATES:
        raise ApplicationError(f"gate {gate} is closed", non_retryable=True)
    return f"passed {gate}"


@registry.defn(name="resumable")
class ResumableWorkflow:
    """Four steps (activity, local activity, the fragile one, activity); the third fails until fixed."""

    @workflow.run
    async def run(self, asked: ResumeAsked) -> list[str]:
        return await tracked(self._steps(asked))

    async def _steps(self, asked: ResumeAsked) -> list[str]:
        done = [await workflow.execute_activity(record_step, f"one:{asked.key}", start_to_close_timeout=STEP)]
        await progress(25, "one done")
        two = workflow.execute_local_activity(record_step, f"two:{asked.key}", start_to_close_timeout=STEP)
        done.append(await two)
        await progress(50, "two done")
        run_step = workflow.execute_local_activity if asked.local else workflow.execute_activity
        try:
            done.append(await run_step(fragile_step, asked.key, start_to_close_timeout=STEP))
        except Exception:
            if asked.compensate:
                undo = f"undo-one:{asked.key}"
                await workflow.execute_activity(record_step, undo, start_to_close_timeout=STEP)
            raise
        await progress(75, "fragile done")
        done.append(
            await workflow.execute_activity(record_step, f"four:{asked.key}", start_to_close_timeout=STEP)
        )
        return done


@registry.defn(name="gate")
class GateWorkflow:
    @workflow.run
    async def run(self, event: GateRequested) -> str:
        return await tracked(self._pass(event))

    async def _pass(self, event: GateRequested) -> str:
        return await workflow.execute_activity(
            pass_gate, event.gate, start_to_close_timeout=timedelta(seconds=10)
        )


class Slept(EventPayload):
    seconds: float = Field(ge=0, le=60)


SLEEP = EventType("sleep.requested", 1, Slept)


@activity.defn
async def busy(seconds: float) -> str:
    """An in-flight activity for shutdown tests: heartbeats while it works."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.1)
    return "finished"


@registry.defn(name="busy")
class BusyWorkflow:
    @workflow.run
    async def run(self, event: Slept) -> str:
        return await tracked(self._work(event))

    async def _work(self, event: Slept) -> str:
        return await workflow.execute_activity(
            busy,
            event.seconds,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=5),
        )


class QueueAsked(EventPayload):
    call: bool = True  # run an activity on the queue, or only say its name


QUEUE_ASKED = EventType("queue.asked", 1, QueueAsked)
SPARE = "spare"  # the test pipeline's own task queue


@activity.defn
async def where_am_i() -> str:
    return activity.info().task_queue


@registry.defn(name="queue-of")
class QueueOfWorkflow:
    """Says which task queue its pipeline's ``spare`` role is, and (``call``) where an activity sent
    there ran."""

    @workflow.run
    async def run(self, asked: QueueAsked) -> list[str]:
        named = task_queue(SPARE)
        if not asked.call:
            return [named]
        ran = await workflow.execute_activity(
            where_am_i, task_queue=named, start_to_close_timeout=timedelta(seconds=30)
        )
        return [named, ran]


@registry.defn(name="video-notice")
class VideoNoticeWorkflow:
    """Subscribes to the video pipeline's announcements, as a notification service would."""

    @workflow.run
    async def run(self, notice: dict[str, Any]) -> dict[str, Any]:
        return notice


class FanOut(EventPayload):
    key: str = Field(min_length=1, max_length=50)


FAN_OUT = EventType("fan.out", 1, FanOut)
FLAKY_SEEN: set[str] = set()


@activity.defn
async def flaky_once(key: str) -> str:
    """Fails its first attempt for each key: a step the run page's trace draws with a retry."""
    if key not in FLAKY_SEEN:
        FLAKY_SEEN.add(key)
        raise ApplicationError(f"the first attempt for {key} fails")
    return key


@registry.defn(name="fan-out")
class FanOutWorkflow:
    """Two steps at once, a timer, then a step that succeeds on its second attempt (the trace view's run)."""

    @workflow.run
    async def run(self, asked: FanOut) -> list[str]:
        return await tracked(self._steps(asked))

    async def _steps(self, asked: FanOut) -> list[str]:
        import asyncio

        timeout = timedelta(seconds=10)
        both = await asyncio.gather(
            *(workflow.execute_activity(busy, 0.4, start_to_close_timeout=timeout) for _ in range(2))
        )
        await workflow.sleep(timedelta(milliseconds=300))
        again = await workflow.execute_activity(
            flaky_once, asked.key, start_to_close_timeout=timeout,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300)),
        )  # fmt: skip
        return [*both, again]


class ChildAsked(EventPayload):
    key: str = Field(min_length=1, max_length=50)
    seconds: float = Field(default=0.2, ge=0, le=60)
    fail: bool = False


CHILD_ASKED = EventType("child.asked", 1, ChildAsked)  # one at a time per key


@registry.defn(name="child-work")
class ChildWorkflow:
    """A child run: waits ``seconds`` (a durable timer), then answers its key, or fails if asked."""

    @workflow.run
    async def run(self, asked: ChildAsked) -> str:
        return await tracked(self._work(asked))

    async def _work(self, asked: ChildAsked) -> str:
        await workflow.sleep(timedelta(seconds=asked.seconds))
        if asked.fail:
            raise ApplicationError(f"child {asked.key} asked to fail", non_retryable=True)
        return f"done {asked.key}"


class ParentAsked(EventPayload):
    """What :class:`ParentWorkflow` triggers: ``one`` child (``fail``: it fails; ``catch``: the parent
    catches that), a ``batch`` of ``children`` (``fail_index``: that one fails), a ``hello`` (typed output),
    a ``nested`` parent of one child, or the ``ambiguous`` event ``hello`` (two subscribers)."""

    key: str = Field(min_length=1, max_length=40)
    mode: Literal["one", "batch", "hello", "nested", "ambiguous"] = "one"
    children: int = Field(default=1, ge=1, le=20)
    seconds: float = Field(default=0.2, ge=0, le=60)
    fail: bool = False
    fail_index: int | None = None
    catch: bool = False
    detached: bool = False


PARENT_ASKED = EventType("parent.asked", 1, ParentAsked)


@registry.defn(name="parent")
class ParentWorkflow:
    """Triggers child runs and waits for them (longhaul/workflows/children.py)."""

    @workflow.run
    async def run(self, asked: ParentAsked) -> list[str]:
        return await tracked(self._children(asked))

    async def _children(self, asked: ParentAsked) -> list[str]:
        if asked.mode == "hello":
            greeting = await trigger_and_wait(HelloWorkflow.run, {"name": asked.key})
            return [greeting.message]  # typed: the child's HelloResult
        if asked.mode == "nested":
            inner = asked.model_copy(update={"mode": "one", "key": f"{asked.key}-inner"})
            return await trigger_and_wait(ParentWorkflow.run, inner)
        if asked.mode == "ambiguous":
            return [str(await trigger_and_wait("hello", {"name": asked.key}))]
        if asked.mode == "batch":
            work = [
                ChildAsked(key=asked.key, seconds=asked.seconds, fail=index == asked.fail_index)
                for index in range(asked.children)
            ]
            results = await batch_trigger_and_wait(ChildWorkflow.run, work, detached=asked.detached)
            return [str(result.output) if result.ok else f"failed: {result.run.error}" for result in results]
        child = ChildAsked(key=asked.key, seconds=asked.seconds, fail=asked.fail)
        try:
            return [await trigger_and_wait(ChildWorkflow.run, child, detached=asked.detached)]
        except ChildRunFailedError as failed:
            if not asked.catch:
                raise
            return [f"caught {failed.status}: {failed.reason}"]


class StreamAsked(EventPayload):
    """What :class:`StreamerWorkflow` writes to its ``lines`` stream: ``lines`` lines, ``pause`` seconds
    apart, through ``pipe`` if ``piped``; its first attempt fails after ``fail_after`` lines."""

    key: str = Field(min_length=1, max_length=50)
    lines: int = Field(default=5, ge=0, le=10_000)
    pause: float = Field(default=0, ge=0, le=5)
    fail_after: int | None = None
    piped: bool = False


STREAM_ASKED = EventType("stream.asked", 1, StreamAsked)


@activity.defn
async def write_lines(asked: StreamAsked) -> int:
    import asyncio
    from collections.abc import AsyncIterator

    out = stream("lines")
    if asked.piped:

        async def lines() -> AsyncIterator[str]:
            for n in range(1, asked.lines + 1):
                yield f"line {n}"
                await asyncio.sleep(asked.pause)

        return await out.pipe(lines())
    for n in range(1, asked.lines + 1):
        if asked.fail_after is not None and n > asked.fail_after and activity.info().attempt == 1:
            raise ApplicationError(f"the first attempt fails after {asked.fail_after} lines")
        await out.append(f"line {n}")
        await asyncio.sleep(asked.pause)
    return asked.lines


@registry.defn(name="streamer")
class StreamerWorkflow:
    """Writes lines to its ``lines`` data stream in an activity (longhaul/activities/streams.py)."""

    @workflow.run
    async def run(self, asked: StreamAsked) -> int:
        return await tracked(self._write(asked))

    async def _write(self, asked: StreamAsked) -> int:
        return await workflow.execute_activity(
            write_lines, asked, start_to_close_timeout=timedelta(seconds=120),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)),
        )  # fmt: skip


TESTS = Pipeline(
    name="tests",
    entries=(
        Subscription(HELLO, HelloAuditWorkflow),
        Subscription(APPROVAL_REQUESTED, ApprovalWorkflow, key="document_id"),
        SignalRoute(APPROVAL_DECIDED, ApprovalWorkflow, key="document_id"),
        Subscription(COUNT, CountWorkflow),
        Subscription(REPORTED, ReportingWorkflow),
        Subscription(GATE, GateWorkflow),
        Subscription(SLEEP, BusyWorkflow),
        Subscription(FAN_OUT, FanOutWorkflow),
        Subscription(PARENT_ASKED, ParentWorkflow),
        Subscription(STREAM_ASKED, StreamerWorkflow),
        Subscription(CHILD_ASKED, ChildWorkflow, concurrency=(Concurrency(1, key="key"),)),
        # Subscribes to the video pipeline's announcements, as another pipeline would.
        Subscription(VIDEO_COMPLETED, VideoNoticeWorkflow, key="video_id"),
        Subscription(VIDEO_FAILED, VideoNoticeWorkflow, key="video_id"),
        Subscription(QUEUE_ASKED, QueueOfWorkflow),
        Subscription(REVIEW_ASKED, ReviewWorkflow, key="document_id"),
        Subscription(RESUME_ASKED, ResumableWorkflow, key="key"),
        Subscription(LIMITED, LimitedWorkflow, concurrency=(Concurrency(2, key="key"),)),
        Subscription(SOLO, LimitedWorkflow, queue="solo", concurrency=(Concurrency(1, key="key"),)),
        Subscription(
            RATED, LimitedWorkflow, queue="rated", rate_limit=RateLimit(2, timedelta(seconds=2), "key")
        ),
        Subscription(SINGLE, LimitedWorkflow, queue="single", singleton=Singleton("key")),
        Subscription(REPLACING, LimitedWorkflow, queue="replacing", singleton=Singleton("key", "cancel")),
        Subscription(CANCELLABLE, LimitedWorkflow, queue="cancellable", cancel_on=(CancelOn(STOP, "key"),)),
        Subscription(
            DEBOUNCED,
            LimitedWorkflow,
            queue="debounced",
            debounce=Debounce(timedelta(seconds=1), "key", max_delay=timedelta(seconds=3)),
        ),
        Subscription(
            LEADING,
            LimitedWorkflow,
            queue="leading",
            debounce=Debounce(timedelta(seconds=1), "key", "leading"),
        ),
        Subscription(
            SLOW_DEBOUNCED,
            LimitedWorkflow,
            queue="slow-debounced",
            debounce=Debounce(timedelta(hours=1), "key", max_delay=timedelta(hours=6)),
        ),
        Subscription(BATCHED, WorkBatchWorkflow, batch=Batch(3, timedelta(seconds=1.5), "key")),
        Subscription(
            FILTERED,
            LimitedWorkflow,
            queue="filtered",
            filter='payload.seconds > 0.5 && payload.key.startsWith("vip")',
        ),
        Subscription(
            COLLECTED,
            WorkBatchWorkflow,
            queue="collected",
            debounce=Debounce(timedelta(seconds=1), "key", collect=True, max_events=3),
        ),
        Subscription(
            THROTTLED, LimitedWorkflow, queue="throttled", throttle=Throttle(2, timedelta(seconds=2), "key")
        ),
        Subscription(FAIR, LimitedWorkflow, queue="fair", fair_share=FairShare()),
        Subscription(
            REFUSED,
            LimitedWorkflow,
            queue="refused",
            rate_limit=RateLimit(2, timedelta(seconds=2), "key", mode="refuse"),
        ),
    ),
    queues=(
        TaskQueue(lambda resources: [pass_gate, busy, record_step, fragile_step, flaky_once, write_lines]),
        TaskQueue(lambda resources: [where_am_i], role=SPARE),
    ),
    waitpoints=(REVIEW,),
)
TEST_CATALOG = Catalog(HELLO_PIPELINE, VIDEO, TESTS)
