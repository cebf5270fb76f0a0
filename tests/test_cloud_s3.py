"""`lossdoctor s3://...` against a real S3-compatible server (moto, on 127.0.0.1), with
TensorFlow installed and imported, in a fresh process, and in a process where TensorFlow cannot
be imported: a logdir uploaded there is diagnosed exactly like the same logdir on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import SimpleValueWriter, decaying, write_tf_scalars

pytest.importorskip("boto3")
pytest.importorskip("moto")

from s3_server import S3Server  # noqa: E402

from tb_lossdoctor import cli  # noqa: E402

BUCKET = "lossdoctor-logs"
ROOT_BUCKET = "lossdoctor-root"  # the same logdir at the bucket root
SINGLE_BUCKET = "lossdoctor-single"  # one run's event files at the bucket root (run ".")
# `python -m tb_lossdoctor` in a process where `import tensorflow` fails, as on a machine
# without it: TensorBoard then picks its stub by itself.
NO_TF_RUNNER = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is not installed (blocked by the test)")
sys.meta_path.insert(0, NoTensorFlow())
from tb_lossdoctor.cli import main
code = main()
assert "tensorflow" not in sys.modules
sys.exit(code)
"""


def _write_logdir(root):
    """Several runs by real writers: simple_value (PyTorch style), TF2 tensors, a nested run."""
    w = SimpleValueWriter(root / "good")
    w.add("train/loss", decaying(80, noise=0.01)).add("val/loss", decaying(80, start=2.1, end=0.3, seed=1))
    w.close()
    w = SimpleValueWriter(root / "broken")
    w.add("loss", decaying(30)[:20] + [float("nan")] * 10)
    w.close()
    write_tf_scalars(root / "sweep" / "lr_0.1" / "train", "epoch_loss", decaying(40, seed=2))
    write_tf_scalars(root / "sweep" / "lr_0.1" / "validation", "epoch_loss",
                     [0.9 - 0.01 * i if i < 15 else 0.75 + 0.02 * (i - 15) for i in range(40)])
    return root


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    return _write_logdir(tmp_path_factory.mktemp("s3_logdir"))


@pytest.fixture(scope="module")
def s3(logdir):
    with S3Server() as server:
        server.upload(logdir, BUCKET, "experiments/exp1")
        server.upload(logdir, ROOT_BUCKET)
        server.upload(logdir / "good", SINGLE_BUCKET)
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch):
    """The server's credentials and endpoint in this process's environment."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "S3_"))]:
        monkeypatch.delenv(key)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def report_of(text):
    report = json.loads(text)
    report.pop("generated_at")
    return report


def local_report(capsys, path):
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 0, err
    return report_of(out)


def test_prefix_is_diagnosed_like_the_local_logdir(s3_env, logdir, capsys):
    import tensorflow  # noqa: F401
    from tensorboard.compat import tf

    assert tf.__version__ != "stub"  # TensorBoard's readers use TensorFlow's gfile here: no s3

    expected = local_report(capsys, logdir)
    assert {r["run"] for r in expected["runs"]} == {"good", "broken", "sweep/lr_0.1"}
    for url in (f"s3://{BUCKET}/experiments/exp1", f"s3://{BUCKET}/experiments/exp1/"):
        code, out, err = run_cli(capsys, url, "--format", "json")
        assert code == 0, err
        assert report_of(out) == expected, url
    code, out, err = run_cli(capsys, f"s3://{BUCKET}/experiments/exp1", "--fail-on", "error")
    assert code == 1 and "broken" in out and "read with the Python event reader" in out


@pytest.mark.parametrize("url", [f"s3://{ROOT_BUCKET}", f"s3://{ROOT_BUCKET}/"])
def test_bucket_root(s3_env, logdir, capsys, url):
    code, out, err = run_cli(capsys, url, "--format", "json")
    assert code == 0, err
    assert report_of(out) == local_report(capsys, logdir)


def test_event_files_at_the_bucket_root_are_the_run_dot(s3_env, logdir, capsys):
    code, out, err = run_cli(capsys, f"s3://{SINGLE_BUCKET}", "--format", "json")
    assert code == 0, err
    report = report_of(out)
    assert [r["run"] for r in report["runs"]] == ["."]
    assert report == local_report(capsys, logdir / "good")


def test_a_command_line_process_with_and_without_tensorflow(s3, logdir, capsys):
    expected = local_report(capsys, logdir)
    url = f"s3://{BUCKET}/experiments/exp1"
    for label, argv in (
        ("tensorflow installed", [sys.executable, "-m", "tb_lossdoctor", url, "--format", "json"]),
        ("tensorflow absent", [sys.executable, "-c", NO_TF_RUNNER, url, "--format", "json"]),
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=s3.env())
        assert proc.returncode == 0, (label, proc.stderr)
        assert report_of(proc.stdout) == expected, label
        assert proc.stderr == "", (label, proc.stderr)  # no TensorFlow start-up noise either


@pytest.mark.parametrize("reader", ["auto", "python"])
def test_a_local_logdir_without_tensorflow(logdir, capsys, reader):
    """The same logdir on disk, in a process where TensorFlow cannot be imported."""
    proc = subprocess.run([sys.executable, "-c", NO_TF_RUNNER, str(logdir), "--format", "json",
                           "--reader", reader], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert report_of(proc.stdout) == local_report(capsys, logdir)


def test_tensorflow_style_endpoint_host_and_port(s3, logdir, capsys):
    """TensorFlow's S3 settings: S3_ENDPOINT=host:port, S3_USE_HTTPS=0 for plain HTTP."""
    env = s3.env(S3_ENDPOINT=f"127.0.0.1:{s3.port}", S3_USE_HTTPS="0")
    proc = subprocess.run([sys.executable, "-m", "tb_lossdoctor", f"s3://{BUCKET}/experiments/exp1",
                           "--format", "json"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert report_of(proc.stdout) == local_report(capsys, logdir)


def one_line_error(s3, url, **env):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tb_lossdoctor", url], capture_output=True,
                          text=True, timeout=60, env=s3.env(**env))
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossdoctor: error: "), proc.stderr
    assert time.monotonic() - start < 30
    return lines[0]


def test_missing_bucket(s3):
    line = one_line_error(s3, "s3://no-such-bucket-here/logs")
    assert "bucket 'no-such-bucket-here' does not exist" in line


@pytest.fixture(scope="module")
def s3_auth():
    """A second server that checks credentials; its bucket is read at the root (see s3_server)."""
    with S3Server(auth=True) as server:
        server.client().create_bucket(Bucket=BUCKET)
        server.client().put_object(Bucket=BUCKET, Key="run/events.out.tfevents.1", Body=b"")
        yield server


def test_wrong_credentials(s3_auth, monkeypatch):
    from tb_lossdoctor.readers import s3 as s3_reader

    url = f"s3://{BUCKET}"
    for key, value in s3_auth.env().items():  # the right credentials pass the same check
        monkeypatch.setenv(key, value)
    with s3_reader.stub_io():
        s3_reader.check(url)
    line = one_line_error(s3_auth, url, AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1")
    assert "InvalidAccessKeyId" in line and "check the AWS credentials" in line
    line = one_line_error(s3_auth, url, AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert "SignatureDoesNotMatch" in line and "check the AWS credentials" in line


def test_no_credentials(s3):
    line = one_line_error(s3, f"s3://{BUCKET}/experiments/exp1",
                          AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    assert "no AWS credentials found" in line


def test_empty_prefix(s3):
    line = one_line_error(s3, f"s3://{BUCKET}/nothing/here")
    assert "no scalar data found in s3://lossdoctor-logs/nothing/here" in line


def test_an_event_file_instead_of_its_folder(s3, logdir):
    event_file = next((logdir / "good").glob("events.out.tfevents*")).name
    line = one_line_error(s3, f"s3://{BUCKET}/experiments/exp1/good/{event_file}")
    assert line.endswith(f"pass the folder that holds it (s3://{BUCKET}/experiments/exp1/good)")


def test_reader_server_gives_the_data_servers_reason(s3_env, capsys):
    code, out, err = run_cli(capsys, f"s3://{BUCKET}/experiments/exp1", "--reader", "server")
    assert code == 2 and out == ""
    assert 'unknown protocol "s3"' in err and len(err.strip().splitlines()) == 1


# -- the Diagnosis tab inside TensorBoard: what TensorBoard itself does with s3:// -----------

NO_TF_TENSORBOARD = NO_TF_RUNNER.split("from tb_lossdoctor")[0] + """
from tensorboard.main import run_main
sys.argv[0] = "tensorboard"
run_main()
"""


def _tensorboard(s3, python_args, url, log):
    from tensorboard_process import free_port

    port = free_port()
    argv = [sys.executable, *python_args, "--logdir", url, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=s3.env(TF_CPP_MIN_LOG_LEVEL="3"))
    return proc, f"http://127.0.0.1:{port}"


def test_tensorboard_with_tensorflow_refuses_s3(s3, tmp_path):
    log_path = tmp_path / "tensorboard.log"
    with open(log_path, "wb") as log:
        proc, _ = _tensorboard(s3, ["-m", "tensorboard.main"], f"s3://{BUCKET}/experiments/exp1", log)
        try:
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code != 0
    assert "Unsupported filename scheme 's3'" in log_path.read_text(errors="replace")


def _verdicts(report):
    return {r["run"]: (r["status"], r["verdict"], sorted(f["code"] for f in r["findings"]))
            for r in report["runs"]}


def _points(report):
    return {(s["run"], s["tag"]): s["points"] for r in report["runs"] for s in r["series"]}


def test_tab_in_tensorboard_without_tensorflow_matches_the_cli(s3_env, capsys, tmp_path):
    from tensorboard_process import REPORT, get_json

    url = f"s3://{BUCKET}/experiments/exp1"
    code, out, err = run_cli(capsys, url, "--format", "json")
    assert code == 0, err
    expected = json.loads(out)
    with open(tmp_path / "tensorboard.log", "wb") as log:
        proc, base = _tensorboard(s3_env, ["-c", NO_TF_TENSORBOARD], url, log)
        try:
            # TensorBoard loads in the background: wait until every point the CLI read is in.
            deadline, report = time.monotonic() + 120, None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    report = get_json(base + REPORT, timeout=10)
                    if _points(report) == _points(expected):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.5)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    tb_log = (tmp_path / "tensorboard.log").read_text(errors="replace")[-3000:]
    assert report is not None and _points(report) == _points(expected), tb_log
    assert _verdicts(report) == _verdicts(expected), tb_log
