"""A PyTorch Lightning callback that diagnoses the logged metrics at each epoch end, logs the
verdict as text through the trainer's TensorBoard logger and stops training on chosen findings,
saying why.

    from tb_lossdoctor.callbacks.lightning import LossDoctorCallback

    doctor = LossDoctorCallback(stop_on=("nan", "blowup", "diverging", "overfitting"))
    trainer = lightning.Trainer(max_epochs=100, callbacks=[doctor])
    trainer.fit(model, train_loader, val_loader)
    doctor.stopped_reason   # the finding that stopped training (a report finding dict), or None

The history is what the module logs at epoch level (`self.log("val_loss", ...)`,
`self.log("train_loss", ..., on_epoch=True)`), read from `trainer.callback_metrics`: validation
metrics when validation ends, the others when the training epoch ends. Steps are where
Lightning's loggers put epoch-level metrics, the last optimizer step of the epoch
(`global_step - 1`), so a finding's step is its x in TensorBoard and the one `lossdoctor LOGDIR`
gives for the same logs (checkpoint names count `global_step`, one more: use `best_epoch`).
Importing this module imports Lightning.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from tb_lossdoctor.callbacks.monitor import HistoryMonitor, is_validation_metric, stop_line
from tb_lossdoctor.history import DEFAULT_STOP_ON, best_step, verdict_markdown
from tb_lossdoctor.settings import Settings

TEXT_TAG = "lossdoctor/verdict"


class LossDoctorCallback(Callback):
    """Judge the logged history at each training epoch end and stop on the findings in `stop_on`.

    - `stop_on`: finding codes that stop training (default `nan`, `blowup`, `diverging`); add
      `"overfitting"` to stop like `EarlyStopping`, with the best checkpoint's step named.
    - `log_text`: write the verdict as a text summary (tag `lossdoctor/verdict`) through each
      TensorBoard logger of the trainer, at the step of the epoch's metrics.
    - `verbose`: print one line when training is stopped.

    After training: `report` (the engine's latest report on `history`), `stopped_reason` (the
    finding that stopped training, or None), `stopped_epoch`, `best_step` and `best_epoch` (the
    best validation point's step and epoch, when the run overfits).
    """

    def __init__(
        self,
        *,
        stop_on: Iterable[str] = DEFAULT_STOP_ON,
        log_text: bool = True,
        verbose: bool = True,
        run: str = "run",
        settings: Optional[Settings] = None,
    ) -> None:
        super().__init__()
        self.log_text = log_text
        self.verbose = verbose
        self._monitor = HistoryMonitor(stop_on, run=run, settings=settings)
        self._reset()

    def _reset(self) -> None:
        self._monitor.reset()
        self._epoch_of_step: Dict[int, int] = {}
        self.stopped_reason: Optional[dict] = None
        self.stopped_epoch: Optional[int] = None

    @property
    def stop_on(self) -> tuple:
        return self._monitor.stop_on

    @property
    def report(self) -> Optional[dict]:
        """The engine's report on the history so far (None before the first epoch ends)."""
        return self._monitor.report

    @property
    def history(self) -> Dict[str, List[float]]:
        """The epoch-level metrics seen so far: {name: values}, at the steps in `history_steps`."""
        return self._monitor.values

    @property
    def history_steps(self) -> Dict[str, List[int]]:
        """{name: steps} of `history`."""
        return self._monitor.steps

    @property
    def best_step(self) -> Optional[int]:
        """The step of the best validation point when the run overfits, else None."""
        return None if self.report is None else best_step(self.report)

    @property
    def best_epoch(self) -> Optional[int]:
        """The epoch (from 0) of `best_step`."""
        step = self.best_step
        return None if step is None else self._epoch_of_step.get(step)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reset()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return  # a sanity check or `trainer.validate()`: not part of the training history
        self._record(trainer, {k: v for k, v in trainer.callback_metrics.items() if is_validation_metric(k)})

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer, {k: v for k, v in trainer.callback_metrics.items() if not is_validation_metric(k)})
        report = self._monitor.judge()
        if self.log_text and trainer.is_global_zero:
            self._write_text(trainer, verdict_markdown(report))
        finding = self._monitor.stop_finding()
        if trainer.strategy.reduce_boolean_decision(finding is not None, all=False):
            self._stop(trainer, finding)

    def _record(self, trainer: Trainer, metrics: Dict[str, Any]) -> None:
        step = logged_step(trainer)
        self._epoch_of_step[step] = trainer.current_epoch
        self._monitor.record(step, metrics)

    def _stop(self, trainer: Trainer, finding: Optional[dict]) -> None:
        trainer.should_stop = True
        if finding is None:  # another process found it
            return
        self.stopped_reason, self.stopped_epoch = finding, trainer.current_epoch
        if self.verbose and trainer.is_global_zero:
            where = f"epoch {trainer.current_epoch} (step {logged_step(trainer)})"
            best = self.best_epoch
            print(stop_line(finding, where, "" if best is None else f"best epoch {best}"), flush=True)

    @staticmethod
    def _write_text(trainer: Trainer, text: str) -> None:
        """The verdict as text through every TensorBoard logger of the trainer (none: nothing)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text(TEXT_TAG, text, global_step=logged_step(trainer))
                logger.experiment.flush()


def logged_step(trainer: Trainer) -> int:
    """The step Lightning's loggers give the metrics of the epoch that is ending: its last
    optimizer step (Lightning logs epoch-end metrics at `global_step - 1`)."""
    return max(int(trainer.global_step) - 1, 0)
