"""The losses of an adversarial game, from real (tiny) GAN trainings in PyTorch.

A GAN's generator and discriminator losses say which player is ahead, not whether a model fits
its data: a healthy GAN's losses hover, or drift apart, without falling. They are not read as
learning curves: a run that logs only them has no recognised metric (the report lists it under
`ignored` instead of calling it `not_learning`), and a run that also logs a content loss (as
super-resolution and image-to-image GANs do) is judged on that loss.
"""

from __future__ import annotations

import pytest

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.readers.logdir import read_logdir
from tensorboard_process import plugin_frame, running_tensorboard
from test_browser_e2e import browser  # noqa: F401 (fixture)

torch = pytest.importorskip("torch")
tb = pytest.importorskip("torch.utils.tensorboard")

STEPS = 600


def _train_gan(logdir, with_content: bool) -> None:
    """A generator maps noise (and, `with_content`, a blurred target) to 1-D samples of a
    two-mode mixture; the discriminator tells them from real ones. Logs per step."""
    torch.manual_seed(0)
    gen = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    disc = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.LeakyReLU(0.2), torch.nn.Linear(32, 1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    writer = tb.SummaryWriter(str(logdir))
    for step in range(STEPS):
        real = torch.where(torch.rand(64, 1) < 0.5, -2.0, 2.0) + 0.3 * torch.randn(64, 1)
        hint = real + torch.randn(64, 1) if with_content else torch.zeros(64, 1)
        fake = gen(torch.cat([torch.randn(64, 3), hint], 1))
        loss_d = bce(disc(real), torch.ones(64, 1)) + bce(disc(fake.detach()), torch.zeros(64, 1))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        adversarial = bce(disc(fake), torch.ones(64, 1))
        content = ((fake - real) ** 2).mean()
        loss_g = adversarial + (content if with_content else 0.0)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if with_content:
            writer.add_scalar("loss_content", content.item(), step)
            writer.add_scalar("loss_adv", adversarial.item(), step)
            writer.add_scalar("loss_D", loss_d.item(), step)
        else:
            writer.add_scalar("Loss/D", loss_d.item(), step)
            writer.add_scalar("Loss/G", loss_g.item(), step)
    writer.close()


def test_a_gan_logging_only_its_players_losses_gets_no_verdict(tmp_path):
    _train_gan(tmp_path / "dcgan", with_content=False)
    series, problems, _ = read_logdir(str(tmp_path))
    assert not problems and {s.tag for s in series} == {"Loss/D", "Loss/G"}
    report = diagnose(series)
    assert report["runs"] == [], report["runs"]
    assert {(i["run"], i["tag"]) for i in report["ignored"]} == {("dcgan", "Loss/D"), ("dcgan", "Loss/G")}


def test_a_gan_with_a_content_loss_is_judged_on_it(tmp_path):
    _train_gan(tmp_path / "srgan", with_content=True)
    series, problems, _ = read_logdir(str(tmp_path))
    [run] = diagnose(series)["runs"]
    assert [s["tag"] for s in run["series"]] == ["loss_content"], run["series"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["srgan:loss_content"]
    assert run["verdict"] != "not_learning", run["findings"]


def test_the_cli_says_what_it_found_instead(tmp_path):
    """A logdir with no learning curve is an input error (exit 2) that names what it holds."""
    import subprocess
    import sys

    _train_gan(tmp_path / "dcgan", with_content=False)
    _train_gan(tmp_path / "gan\x1b[2J", with_content=False)  # a hostile name: a terminal escape
    out = subprocess.run([sys.executable, "-m", "tb_lossdoctor", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and not out.stdout
    assert "no recognised training metrics" in out.stderr
    assert "4 scalar curve(s) are not learning curves: dcgan:Loss/D, dcgan:Loss/G" in out.stderr, out.stderr
    assert "gan\\x1b[2J:Loss/D" in out.stderr and "\x1b" not in out.stderr, out.stderr


def test_the_tab_says_nothing_was_a_learning_curve_and_lists_what_it_saw(browser, tmp_path):  # noqa: F811
    """A real TensorBoard on a GAN's logdir: the Diagnosis tab explains that nothing was
    diagnosed and why, and lists the scalars it saw, as text."""
    _train_gan(tmp_path / "logs" / "dcgan", with_content=False)
    _train_gan(tmp_path / "logs" / "<img src=x onerror=alert(1)>", with_content=False)
    ready = lambda r: r.get("ignored_count") == 4  # noqa: E731
    with running_tensorboard(tmp_path / "logs", ["--load_fast", "true"], ready) as (base, _, report):
        assert report["runs"] == []
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
            frame = plugin_frame(page, shows=".ld-empty:not([hidden]) h2")
            assert frame.locator(".ld-empty h2").inner_text() == "No loss or metric curve recognised"
            text = frame.locator("body").inner_text()
            assert "a GAN's generator and discriminator losses" in text
            assert "Scalars seen (4):" in text and "dcgan / Loss/D" in text and "dcgan / Loss/G" in text
            assert "<img src=x onerror=alert(1)> / Loss/D" in text  # the name, as text
            assert frame.locator("img").count() == 0
        finally:
            context.close()
