"""One path from TOML and flags to the typed configuration, and back to TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectord.daemon.cli import get_args_parser, live_config
from detectord.daemon.cli.loading import build, to_toml
from detectord.daemon.config import ConfigError, DaemonConfig, ModelConfig


def test_a_configuration_written_as_toml_reads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "detector.toml"
    path.write_text(
        'camera = "door"\n[source]\nuri = "rtsp://127.0.0.1/x"\nstall_timeout_s = 2.5\n'
        '[mqtt]\nport = 1884\nusername = "u"\npassword = "p\\"q"\n[model]\nweights = "random"\n'
    )
    config = live_config(get_args_parser().parse_args(["--config", str(path), "--frame-size", "320x200"]), {})
    again = tmp_path / "again.toml"
    again.write_text(to_toml(config))
    assert live_config(get_args_parser().parse_args(["--config", str(again)]), {}) == config
    assert config.frame.width == 320 and config.mqtt.password == 'p"q'


def test_flags_override_the_file_and_the_password_may_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "detector.toml"
    path.write_text('[source]\nuri = "0"\n[mqtt]\nport = 1884\nusername = "u"\n')
    args = get_args_parser().parse_args(["--config", str(path), "--mqtt-port", "1999", "--camera", "c2"])
    config = live_config(args, {"DETECTORD_MQTT_PASSWORD": "secret"})
    assert (config.camera, config.mqtt.port, config.mqtt.password) == ("c2", 1999, "secret")


def test_model_options_are_checked_by_detection_and_named_by_their_key() -> None:
    with pytest.raises(ConfigError, match=r"^model\.profile: unknown profile 'fast'"):
        build(ModelConfig, {"profile": "fast"}, "model")
    with pytest.raises(ConfigError, match=r"^model\.device: unknown device 'cuda:x'"):
        ModelConfig(device="cuda:x")
    with pytest.raises(ConfigError, match=r"^model\.calibration: int8-static needs a calibration file"):
        ModelConfig(precision="int8-static")
    with pytest.raises(ConfigError, match=r"^camera 'a b': use 1-64 letters"):
        build(DaemonConfig, {"camera": "a b", "source": {"uri": "0"}})


def test_a_camera_overrides_one_main_person_setting_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(
        "[main_person]\nmax_gap = 3\n"
        '[[cameras]]\nname = "front"\n[cameras.source]\nuri = "0"\n[cameras.main_person]\nscore_threshold = 0.8\n'
        '[[cameras]]\nname = "back"\n[cameras.source]\nuri = "1"\n[cameras.frame]\nwidth = 320\nheight = 180\n'
    )
    config = live_config(get_args_parser().parse_args(["--config", str(path)]), {})
    front, back = config.live_cameras
    assert config.main_person_of(front).score_threshold == 0.8 and config.main_person_of(front).max_gap == 3
    assert config.main_person_of(back) == config.main_person and config.frame_of(back).size == (320, 180)
    assert config.frame_of(front) == config.frame
    again = tmp_path / "again.toml"
    again.write_text(to_toml(config))
    assert live_config(get_args_parser().parse_args(["--config", str(again)]), {}) == config


def test_a_camera_flag_beside_cameras_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text('[[cameras]]\nname = "front"\n[cameras.source]\nuri = "0"\n')
    with pytest.raises(ConfigError, match="both forms"):
        live_config(get_args_parser().parse_args(["--config", str(path), "--source", "1"]), {})
