"""Configuration loading: layering, every validation path, redaction, permissions, env overrides."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import string
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.cli import main
from appliance.config import CameraConfig, Config, layer_files, load, loader
from appliance.config.checks import RANGES, _num
from appliance.config.layers import parse_layer
from appliance.config.schema import SECTIONS, redacted_dict, to_toml
from appliance.errors import ConfigError
from appliance.logs import SecretFilter, register_secret

# A static token for room "lobby" (only its claims are read; nothing verifies the signature).
STATIC_TOKEN = ("eyJhbGciOiJIUzI1NiJ9."
                "eyJ2aWRlbyI6IHsicm9vbSI6ICJsb2JieSIsICJyb29tSm9pbiI6IHRydWV9fQ"
                ".c3RhdGljLXNpZw")
BASE = f"""
[livekit]
url = "ws://127.0.0.1:7880"
room = "lobby"
token = "{STATIC_TOKEN}"
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def nodev(tmp_path: Path) -> Path:
    """An empty per-device file: the layer exists but adds nothing."""
    path = tmp_path / "device-empty.toml"
    path.touch()
    return path


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(exc.value.problems)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path / "appliance.toml", BASE)


def test_defaults_and_required_keys(base: Path, tmp_path: Path) -> None:
    cfg = load(base, nodev(tmp_path), env={})
    assert cfg.livekit.room == "lobby"
    assert cfg.camera == CameraConfig()
    assert cfg.livekit.identity  # hostname by default
    assert cfg.livekit.name == cfg.livekit.identity
    assert cfg.token_source == "static"


def test_missing_url_and_room(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[livekit]\ntoken = "x-token-value"\n')
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    text = problems_of(exc)
    assert "`livekit.url`: required" in text
    assert "`livekit.room`: required" in text


def test_layers_later_wins(base: Path, tmp_path: Path) -> None:
    device = write(
        tmp_path / "device.toml", '[livekit]\nidentity = "kiosk-07"\n[camera]\nfps = 15\n'
    )
    env = {"APPLIANCE_CAMERA_FPS": "10", "APPLIANCE_LIVEKIT_NAME": "Lobby kiosk"}
    cfg = load(base, device, env=env)
    assert cfg.livekit.identity == "kiosk-07"
    assert cfg.livekit.name == "Lobby kiosk"
    assert cfg.camera.fps == 10  # env beats the device file
    assert load(base, device, env={}).camera.fps == 15


def test_device_file_path_from_config_and_optional(base: Path, tmp_path: Path) -> None:
    device = write(tmp_path / "dev.toml", '[livekit]\nidentity = "from-device"\n')
    text = BASE + f'\n[device]\nfile = "{device}"\n'
    cfg = load(write(tmp_path / "c.toml", text), None, env={})
    assert cfg.livekit.identity == "from-device"
    device.unlink()  # an absent per-device file is simply skipped
    assert load(tmp_path / "c.toml", None, env={}).livekit.identity != "from-device"


def test_explicit_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path / "nope.toml", nodev(tmp_path), env={})
    assert "nope.toml: cannot open it (No such file or directory)" in problems_of(exc)


def test_unknown_key_suggests_and_wrong_type_named(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE + '[camera]\nwidht = 640\nfps = "thirty"\n')
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert exc.value.problems == [
        f"{path}: unknown key `camera.widht`; did you mean `camera.width`?",
        f"{path}: `camera.fps`: expected an integer, found string 'thirty'",
    ]


def test_unknown_section_and_non_table(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE + "[camra]\nfps = 1\n")
    with pytest.raises(ConfigError) as exc:
        parse_layer(path)
    assert "unknown section `[camra]`; did you mean `camera`?" in problems_of(exc)
    path = write(tmp_path / "d.toml", "camera = 3\n")
    with pytest.raises(ConfigError) as exc:
        parse_layer(path)
    assert "`camera`: expected a table, found integer 3" in problems_of(exc)


@pytest.mark.parametrize(
    ("snippet", "needle"),
    [
        ('[camera]\nbackend = "webcam"', '`camera.backend`: expected one of "auto", "picamera2"'),
        ('[camera]\nencoding = "vp8"', '`camera.encoding`: expected one of "raw", "h264"'),
        ("[camera]\nwidth = 641", "`camera.width`: expected an even number"),
        ("[camera]\nheight = 0", "`camera.height`: expected 16..4320 px, found 0"),
        ("[camera]\nfps = 500", "`camera.fps`: expected 1..120 fps, found 500"),
        ("[camera]\nfps = true", "`camera.fps`: expected an integer, found boolean True"),
        ('[microphone]\nbackend = "pulse"', '`microphone.backend`: expected one of "alsa"'),
        ('[speaker]\nbackend = "test"', '`speaker.backend`: expected one of "alsa", "none"'),
        ('[audio]\necho_cancellation = "yes"', "`audio.echo_cancellation`: expected true or false"),
        ('[gpio]\npin_factory = "rpigpio"', '`gpio.pin_factory`: expected one of "auto"'),
        ("[gpio]\nmute_hold = -1", "`gpio.mute_hold`: expected 0.1..20 s, found -1"),
        ("[reconnect]\nbackoff_initial = 0",
         "`reconnect.backoff_initial`: expected 0.05..600 s, found 0"),
        ("[reconnect]\nbackoff_max = 0.5", "`reconnect.backoff_max`: expected at least"),
        ("[watchdog]\nmax_time_outside_room = -5", "`watchdog.max_time_outside_room`: expected 0"),
        ('[control]\nsocket = ""', "`control.socket`: expected a file path"),
        ("[device]\nfile = 3", "`device.file`: expected a file path (string), found integer 3"),
    ],
)
def test_each_validation_error_names_its_key(tmp_path: Path, snippet: str, needle: str) -> None:
    path = write(tmp_path / "c.toml", BASE + snippet + "\n")
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert needle in problems_of(exc)
    assert str(path) in problems_of(exc) or "livekit" in needle


@pytest.mark.parametrize("url", ["127.0.0.1:7880", "ftp://host", "ws://", "lobby"])
def test_bad_url(tmp_path: Path, url: str) -> None:
    path = write(tmp_path / "c.toml", BASE.replace("ws://127.0.0.1:7880", url))
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert (f"`livekit.url`: expected a URL starting ws://, wss://, http:// or https:// and "
            f"naming a host, found {url!r}") in problems_of(exc)


def _lk(body: str) -> str:
    return f'[livekit]\nurl = "wss://x.example"\nroom = "r"\n{body}\n'


def test_no_token_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path / "c.toml", _lk("")), nodev(tmp_path), env={})
    assert "no token source" in problems_of(exc)


def test_two_token_sources(tmp_path: Path) -> None:
    body = 'token = "abcdefg"\napi_key = "k"\napi_secret = "s3cret-value"'
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path / "c.toml", _lk(body)), nodev(tmp_path), env={})
    assert "more than one token source" in problems_of(exc)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('api_secret = "s3cret-value"', "`livekit.api_key`: required"),
        ('api_key = "k"', "set exactly one of `livekit.api_secret` and"),
        ('token_url = "https://t.example/token"', "`livekit.device_key_file`: required"),
        ('device_key_file = "/x"', "`livekit.token_url`: required"),
        ('token_url = "ws://t.example"\ndevice_key_file = "/x"',
         "expected a URL starting http:// or https://"),
    ],
)
def test_incomplete_token_sources(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path / "c.toml", _lk(body)), nodev(tmp_path), env={})
    assert needle in problems_of(exc)


def test_secret_file_sources_and_permissions(tmp_path: Path) -> None:
    secret = write(tmp_path / "api_secret", "s3cret-value\n", mode=0o640)
    body = f'api_key = "k"\napi_secret_file = "{secret}"'
    path = write(tmp_path / "c.toml", _lk(body), mode=0o644)  # holds no secret itself: fine
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert f"{secret} is readable by group or others" in problems_of(exc)
    assert f"chmod 600 {secret}" in problems_of(exc)
    secret.chmod(0o600)
    assert load(path, nodev(tmp_path), env={}).token_source == "local"


def test_secret_file_via_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    write(tmp_path / "creds" / "device_key", "dk-123456\n")
    body = (
        'token_url = "https://t.example/token"\n'
        'device_key_file = "$CREDENTIALS_DIRECTORY/device_key"'
    )
    path = write(tmp_path / "c.toml", _lk(body))
    os.environ["CREDENTIALS_DIRECTORY"] = str(tmp_path / "creds")
    try:
        cfg = load(path, nodev(tmp_path), env={})
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]
    assert cfg.livekit.device_key_file == tmp_path / "creds" / "device_key"
    assert cfg.token_source == "endpoint"


def test_missing_secret_file(tmp_path: Path) -> None:
    body = f'api_key = "k"\napi_secret_file = "{tmp_path}/nope"'
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path / "c.toml", _lk(body)), nodev(tmp_path), env={})
    assert "`livekit.api_secret_file`:" in problems_of(exc)
    assert "cannot open it (No such file or directory)" in problems_of(exc)


def test_config_file_with_secret_must_be_private(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE, mode=0o644)
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert exc.value.problems == [
        f"configuration file {path} is readable by group or others (mode -rw-r--r--); "
        f"it holds a secret: run `chmod 600 {path}`"
    ]
    parse_layer(path, check_permissions=False)  # provisioning reads FAT files, which have no modes


def test_env_overrides_and_errors(base: Path, tmp_path: Path) -> None:
    env = {
        "APPLIANCE_AUDIO_NOISE_SUPPRESSION": "off",
        "APPLIANCE_RECONNECT_BACKOFF_MAX": "12.5",
        "APPLIANCE_CAMERA_BACKEND": "test",
        "APPLIANCE_NETNS": "1",  # not a configuration section: ignored
        "PATH": "/usr/bin",
    }
    cfg = load(base, nodev(tmp_path), env=env)
    assert cfg.audio.noise_suppression is False
    assert cfg.reconnect.backoff_max == 12.5
    assert cfg.camera.backend == "test"
    with pytest.raises(ConfigError) as exc:
        load(
            base,
            nodev(tmp_path),
            env={"APPLIANCE_CAMERA_WIDTH": "wide", "APPLIANCE_CAMERA_FSP": "3"},
        )
    text = problems_of(exc)
    assert "environment: `APPLIANCE_CAMERA_WIDTH` (`camera.width`): expected an integer" in text
    assert "unknown key `APPLIANCE_CAMERA_FSP` (`camera.fsp`); did you mean `camera.fps`?" in text


def test_invalid_toml_and_binary(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[livekit\nurl=")
    with pytest.raises(ConfigError) as exc:
        parse_layer(path)
    assert f"{path}: not valid TOML" in problems_of(exc)
    path.write_bytes(b"\xff\xfe[")
    with pytest.raises(ConfigError) as exc:
        parse_layer(path)
    assert "not UTF-8 text" in problems_of(exc)


def test_redaction_in_repr_dict_and_toml(base: Path, tmp_path: Path) -> None:
    cfg = load(base, nodev(tmp_path), env={})
    assert "static-jwt-value-123" not in repr(cfg)
    data = redacted_dict(cfg)
    assert data["livekit"]["token"] == "***"
    rendered = to_toml(data)
    assert "static-jwt-value-123" not in rendered
    assert tomllib.loads(rendered)["livekit"]["room"] == "lobby"  # printout is valid TOML


def test_wrong_type_of_secret_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE.replace(f'"{STATIC_TOKEN}"', "123456789"))
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert "`livekit.token`: expected a string, found ***" in problems_of(exc)
    assert "123456789" not in problems_of(exc)


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("super-secret-device-key")
    logger = logging.getLogger("test.redact")
    logger.addFilter(SecretFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("using key %s for %s", "super-secret-device-key", "kiosk")
    assert caplog.messages == ["using key *** for kiosk"]


def test_cli_check_exit_codes(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(base), "--device-file", str(nodev(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert 'token = "***"' in out and STATIC_TOKEN not in out
    bad = write(tmp_path / "bad.toml", BASE + '[camera]\nwidht = 640\nfps = "thirty"\n')
    assert main(["check", "--config", str(bad), "--device-file", str(nodev(tmp_path))]) == 78
    err = capsys.readouterr().err
    assert "`camera.widht`" in err and "`camera.fps`" in err


def test_cli_check_names_its_files_and_lists_the_devices(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPLIANCE_CAMERA_FPS", "15")
    device = nodev(tmp_path)
    assert main(["check", "--config", str(base), "--device-file", str(device)]) == 0
    out = capsys.readouterr().out
    assert f"#   configuration file {base} (--config): used" in out
    assert f"#   per-device file {device} (--device-file): used" in out
    assert "#   environment: APPLIANCE_CAMERA_FPS" in out
    assert "#   ALSA capture PCMs:" in out and "#   ALSA playback PCMs:" in out
    assert "#   microphone: would use ALSA capture device 'default'" in out
    assert tomllib.loads(out)["camera"]["fps"] == 15  # the comments keep it a valid file


def test_cli_check_without_files_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(loader, "DEFAULT_CONFIG_FILE", tmp_path / "etc" / "appliance.toml")
    monkeypatch.setattr(loader, "DEFAULT_DEVICE_FILE", tmp_path / "boot" / "appliance.toml")
    assert main(["check"]) == 78
    captured = capsys.readouterr()
    assert "defaults: `livekit.url`: required" in captured.err
    assert (f"looked for:\n  - configuration file {tmp_path}/etc/appliance.toml (the default "
            "path; --config FILE names another): not found, skipped\n"
            f"  - per-device file {tmp_path}/boot/appliance.toml (the default path): not "
            "found, skipped\n"
            "  - environment: no APPLIANCE_<SECTION>_<KEY> settings\n") in captured.err
    assert "# devices on this machine:\n#   picamera2 cameras:" in captured.out


def test_layer_files_follow_device_file_from_the_config(base: Path, tmp_path: Path) -> None:
    device = write(tmp_path / "device.toml", '[livekit]\nidentity = "kiosk-9"\n')
    config = write(tmp_path / "with-device.toml",
                   base.read_text() + f'[device]\nfile = "{device}"\n')
    lines = layer_files(config, None, env={})
    assert lines[1] == f"per-device file {device} (`device.file`): used"
    lines = layer_files(config, None, env={"APPLIANCE_DEVICE_FILE": "/nowhere.toml"})
    assert lines[1] == ("per-device file /nowhere.toml (APPLIANCE_DEVICE_FILE): not found, "
                        "skipped")
    assert lines[2] == "environment: APPLIANCE_DEVICE_FILE"


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("appliance ")


# --- generated documents: the loader returns a Config or raises ConfigError, nothing else -------

_keys = st.sampled_from(
    [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    + ["widht", "x", "url"]
)
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=string.printable, max_size=30),
    st.sampled_from(["ws://127.0.0.1:7880", "https://t.example/x", "test", "none", "h264"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_sections = st.sampled_from([*SECTIONS, "camra", "extra"])
_documents = st.dictionaries(_sections, st.dictionaries(_keys, _scalars, max_size=6), max_size=6)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=_documents,
    env=st.dictionaries(
        st.sampled_from(
            [
                "APPLIANCE_CAMERA_FPS",
                "APPLIANCE_LIVEKIT_URL",
                "APPLIANCE_GPIO_MUTE_HOLD",
                "APPLIANCE_AUDIO_NOISE_SUPPRESSION",
                "APPLIANCE_CAMERA_NOPE",
            ]
        ),
        st.text(alphabet=string.printable, max_size=10),
        max_size=3,
    ),
)
def test_generated_documents_never_crash(tmp_path: Path, doc: dict, env: dict[str, str]) -> None:
    text = "\n".join(
        f"[{section}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in table.items())
        for section, table in doc.items()
    )
    path = write(tmp_path / "gen.toml", text)
    try:
        cfg = load(path, nodev(tmp_path), env=env)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        for problem in exc.problems:  # each names the key (in backticks) or the file at fault
            assert "`" in problem or str(path) in problem, problem
    else:
        assert isinstance(cfg, Config)
        assert "***" not in repr(cfg) or cfg.livekit.token or cfg.livekit.api_secret


def test_token_ttl_floor(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE + "token_ttl = 5\n")
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert f"{path}: `livekit.token_ttl`: expected 60..2592000 s, found 5" in problems_of(exc)


def test_readme_documents_every_key() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in readme or f"`{section}.{f.name}`" in readme, (
                f"README configuration reference lacks `{section}.{f.name}`"
            )


# --- hardening: special files, absurd numbers, parse bombs, tokens that contradict the config --


@pytest.mark.parametrize("key", sorted(RANGES))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300"])
def test_every_number_is_finite_and_bounded(tmp_path: Path, key: str, value: str) -> None:
    section, name = key.split(".")
    if isinstance(getattr(SECTIONS[section](), name), int) and value != "1e300":
        pytest.skip("TOML has no integer NaN or infinity")
    value = "9" * 30 if isinstance(getattr(SECTIONS[section](), name), int) else value
    path = write(tmp_path / "c.toml", BASE + f"[{section}]\n{name} = {value}\n"
                 if section != "livekit" else BASE + f"{name} = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert f"`{key}`: expected" in problems_of(exc)


def test_a_fifo_as_config_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError) as exc:
        load(fifo, nodev(tmp_path), env={})
    assert "is a FIFO (named pipe); expected a regular file" in problems_of(exc)


def test_a_device_or_directory_as_config_is_refused(tmp_path: Path) -> None:
    for path, kind in ((Path("/dev/zero"), "a character device"), (tmp_path, "a directory")):
        with pytest.raises(ConfigError) as exc:
            load(path, nodev(tmp_path), env={})
        assert f"{path}: is {kind}" in problems_of(exc)


def test_a_huge_config_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE + "# " + "x" * (300 * 1024) + "\n")
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert "more than the 256 KiB" in problems_of(exc)


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE + "[camera]\ndevice = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert "nested 5000 deep" in problems_of(exc)


@pytest.mark.parametrize("url", ["wss://[::1", "wss://host:99999", "wss://host:port"])
def test_unparseable_urls_are_config_errors(tmp_path: Path, url: str) -> None:
    path = write(tmp_path / "c.toml", BASE.replace("ws://127.0.0.1:7880", url))
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert "`livekit.url`: not a valid URL" in problems_of(exc)


def _secret_cfg(tmp_path: Path, secret: Path) -> Path:
    return write(tmp_path / "c.toml", '[livekit]\nurl = "ws://127.0.0.1:7880"\nroom = "lobby"\n'
                 f'api_key = "k"\napi_secret_file = "{secret}"\n')


@pytest.mark.parametrize("kind", ["empty", "directory", "fifo", "blank"])
def test_unusable_secret_files_fail_check_as_they_would_fail_run(tmp_path: Path,
                                                                 kind: str) -> None:
    secret = tmp_path / "secret"
    if kind == "directory":
        secret.mkdir(mode=0o700)
    elif kind == "fifo":
        os.mkfifo(secret, 0o600)
    else:
        write(secret, "" if kind == "empty" else "  \n")
    with pytest.raises(ConfigError) as exc:
        load(_secret_cfg(tmp_path, secret), nodev(tmp_path), env={})
    text = problems_of(exc)
    assert f"`livekit.api_secret_file`: {secret}" in text
    assert {"empty": "empty", "blank": "empty", "directory": "is a directory",
            "fifo": "is a FIFO"}[kind] in text


def test_empty_secret_from_the_environment_is_refused(base: Path, tmp_path: Path) -> None:
    path = _secret_cfg(tmp_path, tmp_path / "unused")
    path.write_text('[livekit]\nurl = "ws://127.0.0.1:7880"\nroom = "lobby"\napi_key = "k"\n')
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={"APPLIANCE_LIVEKIT_API_SECRET": ""})
    assert "`livekit.api_secret`: empty" in problems_of(exc)


def _token(claims: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2ln"


def test_a_static_token_for_another_room_or_identity_names_both(tmp_path: Path) -> None:
    token = _token({"sub": "kiosk-9", "video": {"room": "hall", "roomJoin": True}})
    path = write(tmp_path / "c.toml", '[livekit]\nurl = "ws://h"\nroom = "lobby"\n'
                 f'identity = "kiosk-1"\ntoken = "{token}"\n')
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    text = problems_of(exc)
    assert "`livekit.token`: grants room 'hall', but `livekit.room` is 'lobby'" in text
    assert "is for identity 'kiosk-9', but `livekit.identity` is 'kiosk-1'" in text
    assert token not in text


def test_a_static_token_that_is_not_a_jwt_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", BASE.replace(STATIC_TOKEN, "not-a-token"))
    with pytest.raises(ConfigError) as exc:
        load(path, nodev(tmp_path), env={})
    assert "`livekit.token`: not a LiveKit access token" in problems_of(exc)


def test_an_unknown_board_profile_fails_check(base: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    device = write(tmp_path / "dev.toml", '[gpio]\nprofile = "no-such-board"\n')
    assert main(["check", "--config", str(base), "--device-file", str(device)]) == 78
    assert "unknown board profile 'no-such-board'" in capsys.readouterr().err


def test_readme_lists_every_number_range() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for key, (low, high, unit) in RANGES.items():
        row = f"| `{key}` | {_num(low)}..{_num(high)} {unit} |"
        assert row in readme, row


def test_remote_unmute_may_only_be_allowed_by_the_device_file(base: Path, tmp_path: Path) -> None:
    main_cfg = write(tmp_path / "main.toml", BASE + "[remote]\nallow_unmute = true\n")
    with pytest.raises(ConfigError) as exc:
        load(main_cfg, nodev(tmp_path), env={})
    assert "`remote.allow_unmute`: may only be set in the per-device file" in problems_of(exc)
    with pytest.raises(ConfigError):
        load(base, nodev(tmp_path), env={"APPLIANCE_REMOTE_ALLOW_UNMUTE": "true"})
    device = write(tmp_path / "device.toml", "[remote]\nallow_unmute = true\n")
    assert load(base, device, env={}).remote.allow_unmute
