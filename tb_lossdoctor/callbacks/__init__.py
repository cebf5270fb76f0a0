"""Training callbacks that diagnose the history at each epoch end (optional extras).

- `tb_lossdoctor.callbacks.keras.LossDoctorCallback`: Keras (`pip install "tb-lossdoctor[keras]"`).
- `tb_lossdoctor.callbacks.lightning.LossDoctorCallback`: PyTorch Lightning
  (`pip install "tb-lossdoctor[lightning]"`).

Each module imports its framework when it is imported itself; this package imports neither, so
`import tb_lossdoctor` never pulls in TensorFlow, Keras, torch or Lightning.
"""
