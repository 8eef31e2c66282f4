"""Settings: sources, precedence, the Temporal connection read like the temporal CLI, documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.cleanup import CleanupSettings
from activities.orders.settings import OrderSettings
from activities.video.settings import VideoSettings
from longhaul.config import PipelineSettings, Settings
from workflows.catalog import CATALOG

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_put_state_in_dot_longhaul_and_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path(".longhaul")
    assert settings.app_database_url == f"sqlite+aiosqlite:///{tmp_path / '.longhaul' / 'longhaul.db'}"
    assert settings.temporal_connect_config() == {"target_host": "localhost:7233", "namespace": "default"}
    assert not settings.temporal_address_configured()


def test_environment_beats_file_and_flags_beat_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('task_queue = "from-file"\napi_port = 9001\nworker_shutdown_timeout = 5\n')
    monkeypatch.setenv("LONGHAUL_CONFIG", str(config))
    monkeypatch.setenv("LONGHAUL_API_PORT", "9002")
    settings = Settings()
    assert settings.task_queue == "from-file"
    assert settings.api_port == 9002
    assert settings.worker_shutdown_timeout == 5
    assert Settings(api_port=9003).api_port == 9003


def test_temporal_connection_is_read_like_the_temporal_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiles = tmp_path / "temporal.toml"
    profiles.write_text('[profile.staging]\naddress = "staging.example:7233"\nnamespace = "orders"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    assert Settings().temporal_connect_config() == {
        "target_host": "staging.example:7233",
        "namespace": "orders",
    }
    assert Settings().temporal_address_configured()
    monkeypatch.setenv("TEMPORAL_ADDRESS", "prod.example:7233")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret")
    config = Settings().temporal_connect_config()
    assert config["target_host"] == "prod.example:7233"
    assert config["namespace"] == "orders"
    assert config["api_key"] == "secret"
    assert config["tls"] is True


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGHAUL_API_PORT", "not-a-port")
    with pytest.raises(ValueError, match="api_port"):
        Settings()


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`LONGHAUL_{name.upper()}`" not in documented]
    assert missing == []


class _Greetings(PipelineSettings, section="greetings"):
    greeting: str = "Hello"
    shout: bool = False


def test_a_pipelines_settings_come_from_overrides_then_its_prefix_then_its_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _Greetings.of(Settings()).greeting == "Hello"
    config = tmp_path / "longhaul.toml"
    config.write_text('task_queue = "q"\n[greetings]\ngreeting = "Hi"\nshout = true\n')
    monkeypatch.setenv("LONGHAUL_CONFIG", str(config))
    assert _Greetings.of(Settings()) == _Greetings(greeting="Hi", shout=True)
    monkeypatch.setenv("GREETINGS_GREETING", "Moin")
    assert _Greetings.of(Settings()).greeting == "Moin"
    monkeypatch.setenv("LONGHAUL_PIPELINE_SETTINGS", '{"greetings": {"greeting": "Servus"}}')
    assert _Greetings.of(Settings()) == _Greetings(greeting="Servus", shout=True)
    monkeypatch.delenv("LONGHAUL_PIPELINE_SETTINGS")
    assert _Greetings.of(Settings(pipeline_settings={"other": {"greeting": "x"}})).greeting == "Moin"


def test_the_shipped_pipelines_settings_are_theirs_and_documented_with_them() -> None:
    engine = set(Settings.model_fields)
    for model, doc in (
        (OrderSettings, "orders.md"),
        (VideoSettings, "video.md"),
        (CleanupSettings, "schedules.md"),
    ):
        assert not engine & set(model.model_fields), f"{model.__name__} repeats engine settings"
        documented = (ROOT / "docs" / doc).read_text()
        prefix = f"{model.section.upper()}_"
        missing = [name for name in model.model_fields if f"`{prefix}{name.upper()}`" not in documented]
        assert missing == [], doc


def test_a_worker_refuses_a_pipelines_invalid_setting_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_PAYMENTS_CONCURRENCY", "none")
    with pytest.raises(ValueError, match=r"pipeline 'orders'.*ORDERS_PAYMENTS_CONCURRENCY"):
        CATALOG.check_settings(Settings())
