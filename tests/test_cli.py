"""The command line as a user (or a script) meets it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from conftest import wait_for

from realm.bus import LazyPirateClient
from realm.cli.main import main as cli_main
from realm.home import Home, hold_lock
from realm.vault.checkpoints import complete_checkpoints, read_sidecar

FAST_TRAIN = {"batch_size": 4, "max_length": 64, "warmup_steps": 5, "threads": 1}


def realm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realm.cli", *args], capture_output=True, text=True, timeout=timeout)


def realm_to_a_reader_gone(*args: str) -> subprocess.CompletedProcess:
    """``realm ARGS | head -0``: the reader closes the pipe before realm writes to it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "realm.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()
    stderr = process.stderr.read()
    return subprocess.CompletedProcess(process.args, process.wait(timeout=120), "", stderr)


def write_config(path, **sections):
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def test_help_lists_the_commands():
    result = realm("--help")
    assert result.returncode == 0
    for command in ("play", "trainer", "tui", "status", "pause", "resume", "stop"):
        assert command in result.stdout


def test_status_without_a_trainer_says_so_at_once_naming_play_and_trainer(tmp_path):
    home = tmp_path / "nowhere"
    result = realm("status", "--home", str(home))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"realm: no trainer is running on {home}: start one with `realm play` (trainer and game) "
        "or `realm trainer` (training only), with the same --home/--config"
    )
    assert not (home / "run" / "trainer-ctl").exists()  # nothing was bound or connected in its place


def _count_tries(monkeypatch) -> list[str]:
    """The endpoint of every socket a CLI request opens, one per try."""
    tries = []
    opened = LazyPirateClient._socket

    def counted(client):
        tries.append(client.endpoint)
        return opened(client)

    monkeypatch.setattr(LazyPirateClient, "_socket", counted)
    return tries


def test_a_stale_socket_file_without_a_live_trainer_lock_is_not_running(tmp_path, monkeypatch, capsys):
    home = Home(tmp_path / "home").ensure()
    (home.run / "trainer-ctl").touch()  # left by a trainer that was killed
    home.trainer_lock.write_text("999999")  # its pid, but nobody holds the lock
    tries = _count_tries(monkeypatch)
    assert cli_main(["status", "--home", str(home.root)]) == 1
    assert tries == []
    assert "no trainer is running" in capsys.readouterr().err


def test_a_held_trainer_lock_with_its_socket_file_is_asked(tmp_path, monkeypatch, capsys):
    home = Home(tmp_path / "home").ensure()
    (home.run / "trainer-ctl").touch()
    config = write_config(tmp_path / "realm.yaml", bus={"timeout_s": 0.05, "retries": 1})
    tries = _count_tries(monkeypatch)
    with hold_lock(home.trainer_lock, "trainer"):  # a trainer still starting: its socket may not answer yet
        assert cli_main(["status", "--home", str(home.root), "--config", str(config)]) == 1
    assert len(tries) == 2
    assert "no trainer answered" in capsys.readouterr().err


def test_a_tcp_trainer_is_asked_with_the_usual_tries(tmp_path, monkeypatch, capsys):
    config = write_config(
        tmp_path / "realm.yaml", bus={"control": "tcp://127.0.0.1:1", "timeout_s": 0.05, "retries": 2}
    )
    tries = _count_tries(monkeypatch)
    assert cli_main(["status", "--home", str(tmp_path / "home"), "--config", str(config)]) == 1
    assert tries == ["tcp://127.0.0.1:1"] * 3
    assert "no trainer answered at tcp://127.0.0.1:1" in capsys.readouterr().err


def test_bad_config_names_the_file_and_the_key(tmp_path):
    config = write_config(tmp_path / "bad.yaml", train={"batch_size": "lots"})
    result = realm("status", "--home", str(tmp_path), "--config", str(config))
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "train.batch_size" in result.stderr

    missing = realm("pause", "--home", str(tmp_path), "--config", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_a_trainer_with_an_unusable_setting_exits_2_naming_the_key(tmp_path):
    cases = [
        ("train:\n  lr: .nan\n", "train.lr: must be a finite number, not nan"),
        ("train:\n  lr: .inf\n", "train.lr: must be a finite number, not inf"),
        ("train:\n  threads: -3\n", "train.threads: "),
        ("train:\n  seed: 100000000000000000000000\n", "train.seed: "),
        ("model:\n  device: quantum\n", "model.device: must be auto, cpu, cuda or cuda:N, not 'quantum'"),
    ]
    # found once the skill folder is read, so it names the folder rather than the file
    mix = "skills:\n  mix: [nope]\n", "realm: bad config: skills.mix: 'nope' is not a skill in configs/skills; known: "
    for index, (text, expected) in enumerate(cases + [mix]):
        config = tmp_path / f"bad-{index}.yaml"
        config.write_text(text, encoding="utf-8")
        result = realm("trainer", "--home", str(tmp_path / "home"), "--config", str(config))
        assert result.returncode == 2, (text, result.stderr)
        said = expected if text == mix[0] else f"realm: bad config: {config}: {expected}"
        assert said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not list((tmp_path / "home").glob("vault/checkpoints/checkpoint-*"))  # nothing trained, nothing saved


def test_a_max_steps_below_one_is_refused_before_anything_starts(tmp_path):
    for command in ("play", "trainer"):
        for steps in ("-3", "0", "ten"):
            extra = ("--headless",) if command == "play" else ()
            result = realm(command, *extra, "--max-steps", steps, "--home", str(tmp_path / "home"))
            assert result.returncode == 2, result.stderr
            assert f"expected a number of steps, 1 or more; got '{steps}'" in result.stderr
    assert not (tmp_path / "home").exists()


def test_a_port_outside_1_to_65535_is_refused():
    result = realm("tui", "--serve", "--port", "99999")  # listened on 99999 mod 65536 and printed 99999
    assert result.returncode == 2 and "expected a port, 1 to 65535; got '99999'" in result.stderr, result.stderr


def test_a_bad_key_binding_stops_play_and_tui_before_anything_starts(tmp_path):
    config = write_config(tmp_path / "keys.yaml", tui={"keys": {"battle.paws": "p"}})
    for command in ("tui", "play"):
        result = realm(command, "--home", str(tmp_path / "home"), "--config", str(config))
        assert result.returncode == 2, result.stderr
        assert "'battle.paws'" in result.stderr and "realm tui --keys" in result.stderr
    assert not (tmp_path / "home" / "logs").exists()  # neither a trainer nor an oracle was started


def test_headless_play_trains_checkpoints_and_resumes(tmp_path):
    home = tmp_path / "home"
    config = write_config(tmp_path / "fast.yaml", train=FAST_TRAIN)
    first = realm("play", "--headless", "--max-steps", "8", "--home", str(home), "--config", str(config))
    assert first.returncode == 0, first.stderr
    [checkpoint] = complete_checkpoints(home / "vault" / "checkpoints")
    assert checkpoint.name.startswith("checkpoint-8-")
    assert (checkpoint / "model.safetensors").exists() and read_sidecar(checkpoint)["step"] == 8
    assert (home / "vault" / "realm.db").exists()

    second = realm("play", "--headless", "--max-steps", "4", "--home", str(home), "--config", str(config))
    assert second.returncode == 0, second.stderr
    steps = [c.name.split("-")[1] for c in complete_checkpoints(home / "vault" / "checkpoints")]
    assert steps == ["8", "12"]  # resumed at 8, not from scratch


def test_status_pause_resume_stop_against_a_running_trainer(tmp_path):
    home = tmp_path / "home"
    config = write_config(tmp_path / "fast.yaml", train=FAST_TRAIN, bus={"timeout_s": 5.0})
    common = ("--home", str(home), "--config", str(config))
    trainer = subprocess.Popen(
        [sys.executable, "-m", "realm.cli", "trainer", *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def status():
            result = realm("status", "--json", *common)
            return json.loads(result.stdout) if result.returncode == 0 else None

        first = wait_for(
            lambda: (s := status()) and s["state"]["hero"]["steps"] > 0 and s, timeout=60, what="the trainer to train"
        )
        assert first["state"]["trainer"]["model"] == "builtin:dio-nano"
        assert first["run"] and first["seq"] > 0

        assert realm("pause", *common).returncode == 0
        wait_for(lambda: status()["state"]["battle"]["status"] == "paused", what="paused")
        human = realm("status", *common)
        assert human.returncode == 0 and "battle: paused" in human.stdout and "DIO  Lv 1" in human.stdout
        assert "tok/s" not in human.stdout, "paused, the last step's rate is not a rate now"
        assert max(map(len, human.stdout.splitlines())) <= 80, human.stdout
        for form in ((), ("--json",)):  # `realm status | head`
            gone = realm_to_a_reader_gone("status", *form, *common)
            assert (gone.returncode, gone.stderr) == (141, "")

        assert realm("resume", *common).returncode == 0
        wait_for(lambda: status()["state"]["battle"]["status"] == "training", what="training again")

        assert realm("stop", *common).returncode == 0
        assert trainer.wait(timeout=60) == 0
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert complete_checkpoints(home / "vault" / "checkpoints"), "a stop leaves a checkpoint"


def test_output_to_a_reader_that_went_away_ends_quietly_with_the_sigpipe_code():
    result = realm_to_a_reader_gone("tui", "--keys")
    assert (result.returncode, result.stderr) == (141, "")


def test_play_on_a_home_that_already_plays_refuses_and_starts_nothing(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer_factory(home=home).start()  # this process holds the data root's trainer lock
    refusal = f"realm: a trainer (pid {os.getpid()}) already plays on {home}; `realm tui --home {home}` joins it\n"
    for mode in (["--headless"], []):
        result = realm("play", *mode, "--home", str(home), timeout=60)
        assert (result.returncode, result.stderr) == (2, refusal)
    assert not (home / "logs" / "oracle.log").exists()  # no second oracle was started either


def test_vault_export_onto_a_file_is_one_line_and_an_exit_code(tmp_path):
    from tests.oracle.conftest import add_checkpoint

    home = tmp_path / "home"
    add_checkpoint(home, 5)
    onto = tmp_path / "a-file"
    onto.write_text("keep me\n")
    result = realm("vault", "export", "5", str(onto), "--home", str(home))
    assert (result.returncode, result.stderr) == (
        1,
        f"realm: {onto} is a file; export copies checkpoint 5 into a folder: name a folder\n",
    )
    assert onto.read_text() == "keep me\n"
    below = realm("vault", "export", "5", str(onto / "sub"), "--home", str(home))  # the OS refuses: still one line
    assert below.returncode == 1 and below.stderr.startswith(f"realm: {onto / 'sub'}: ")
    assert below.stderr.count("\n") == 1
