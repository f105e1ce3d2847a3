__version__ = "0.1.0"

# OpenMP reads its wait policy once, when torch loads. Its default keeps idle threads spinning, which starves the
# data-loader workers on a small CPU (training 2-4x slower on 2 cores); waiting passively costs the model step nothing.
# Every route into the package (python -m, console scripts, papermill, torchrun, `import triplet_ssl`) gets it here,
# before torch loads, unless the user chose a policy. When torch was imported first, the trainer makes GNU OpenMP's
# idle threads sleep another way (`triplet_ssl.distributed.quiet_openmp`).
import os as _os, sys as _sys
if 'torch' not in _sys.modules: _os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
OMP_PASSIVE = _os.environ.get('OMP_WAIT_POLICY', '').upper() == 'PASSIVE'   # what OpenMP read (or will read) when torch loaded
