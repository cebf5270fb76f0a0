"""A Keras callback that diagnoses the history at each epoch end, logs the verdict as a
TensorBoard text summary and stops training on chosen findings, saying why.

    from tb_lossdoctor.callbacks.keras import LossDoctorCallback

    doctor = LossDoctorCallback(log_dir="logs/run1", stop_on=("nan", "blowup", "diverging", "overfitting"),
                                restore_best_weights=True)
    model.fit(x, y, validation_data=(xv, yv), epochs=100, callbacks=[doctor])
    doctor.stopped_reason   # the finding that stopped training (a report finding dict), or None

Steps are epoch indices counted from 0, as Keras' own TensorBoard callback logs epochs, so a
finding's step is the x of that epoch in TensorBoard. Importing this module imports Keras;
TensorFlow is imported only to write the text summary.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import keras

from tb_lossdoctor.callbacks.monitor import HistoryMonitor, direction_of, improved, stop_line
from tb_lossdoctor.history import DEFAULT_STOP_ON, verdict_markdown
from tb_lossdoctor.settings import Settings

TEXT_TAG = "lossdoctor/verdict"


class LossDoctorCallback(keras.callbacks.Callback):
    """Judge the training history at each epoch end and stop on the findings in `stop_on`.

    - `log_dir`: where to write the verdict as a TensorBoard text summary (tag
      `lossdoctor/verdict`, one per epoch); None writes nothing. The Keras TensorBoard
      callback's own `log_dir` is a good choice: the text then sits beside the curves.
    - `stop_on`: finding codes that stop training (default `nan`, `blowup`, `diverging`); add
      `"overfitting"` to stop like `EarlyStopping`, with the best checkpoint's step named.
    - `restore_best_weights`: on a stop, put back the weights of the epoch where `monitor`
      (default `val_loss`, else `loss`) was best, as `EarlyStopping(restore_best_weights=True)`.
    - `verbose`: print one line when training is stopped.

    After training: `report` (the engine's latest report on `history`), `stopped_reason` (the finding that
    stopped training, or None), `stopped_epoch`, `best_epoch` (0-based, where `monitor` was
    best) and `restored` (whether weights were put back).
    """

    def __init__(
        self,
        log_dir: Optional[str] = None,
        *,
        stop_on: Iterable[str] = DEFAULT_STOP_ON,
        restore_best_weights: bool = False,
        monitor: str = "val_loss",
        verbose: int = 1,
        run: str = "run",
        settings: Optional[Settings] = None,
    ) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.restore_best_weights = restore_best_weights
        self.monitor = monitor
        self.verbose = verbose
        self._monitor = HistoryMonitor(stop_on, run=run, settings=settings)
        self._writer: Any = None
        self._reset()

    @property
    def stop_on(self) -> tuple:
        return self._monitor.stop_on

    @property
    def report(self) -> Optional[dict]:
        """The engine's report on the history so far (None before the first epoch ends)."""
        return self._monitor.report

    @property
    def history(self) -> Dict[str, List[float]]:
        """The metrics seen so far, one value per epoch: {name: values} (the steps are 0, 1, ...)."""
        return self._monitor.values

    def _reset(self) -> None:
        self._monitor.reset()
        self.stopped_reason: Optional[dict] = None
        self.stopped_epoch: Optional[int] = None
        self.best_epoch: Optional[int] = None
        self.restored = False
        self._best_value: Optional[float] = None
        self._best_weights: Optional[list] = None

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        logs = logs or {}
        self._monitor.record(epoch, logs)
        self._remember_best(epoch, logs)
        report = self._monitor.judge()
        if self.log_dir is not None:
            self._write_text(epoch, verdict_markdown(report))
        finding = self._monitor.stop_finding()
        if finding is not None:
            self._stop(epoch, finding)

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _monitored(self, logs: dict) -> Optional[str]:
        """The metric the best weights follow: `monitor`, else the training loss."""
        if self.monitor in logs:
            return self.monitor
        return "loss" if "loss" in logs else None

    def _remember_best(self, epoch: int, logs: dict) -> None:
        name = self._monitored(logs)
        if name is None:
            return
        value = float(logs[name])
        if improved(value, self._best_value, direction_of(name)):
            self._best_value, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()

    def _stop(self, epoch: int, finding: dict) -> None:
        self.model.stop_training = True
        self.stopped_reason, self.stopped_epoch = finding, epoch
        restored = ""
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
            self.restored = True
            restored = f"restored the weights of epoch {self.best_epoch} ({self._monitored_name()} best)"
        if self.verbose:
            print(stop_line(finding, f"epoch {epoch}", restored), flush=True)

    def _monitored_name(self) -> str:
        return self.monitor if self.monitor in self._monitor.values else "loss"

    def _write_text(self, epoch: int, text: str) -> None:
        """The verdict as a text summary at step `epoch` (TensorFlow's summary writer)."""
        import tensorflow as tf  # only here: the rest of the callback runs on any Keras backend

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.text(TEXT_TAG, text, step=epoch)
        self._writer.flush()
