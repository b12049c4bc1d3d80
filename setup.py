# Copyright (c) OpenMMLab. All rights reserved.
"""Build and install mnc_mm.

The compiled ops go into one extension, ``mnc_mm._ext``, built the way mmcv
builds ``mmcv._ext``:

* C++ CPU sources (``ops/csrc/pytorch/*.cpp`` and ``cpu/*.cpp``) always;
* CUDA sources (``cuda/*.cu``, ``cuda/*.cpp``) too when
  ``torch.cuda.is_available()`` or ``FORCE_CUDA=1`` (CUDA_HOME must point to
  a CUDA toolkit that matches torch);
* ``MNC_MM_WITH_OPS=0`` skips the extension (pure-Python install).

torch must already be installed, so install with
``pip install --no-build-isolation -e .``: an isolated build would fetch
another torch.

As mmdet's setup.py does, the configs, tools and ``model-index.yml`` go into
``mnc_mm/.mim`` (copies in a wheel, symlinks in an editable install), where
mim and mmengine's ``mnc_mm::`` config paths look for them.
"""
import glob
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
CSRC = osp.join('mnc_mm', 'ops', 'csrc')


def read_version():
    scope = {}
    with open(osp.join(ROOT, 'mnc_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Requirement lines of ``requirements/<fname>`` without comments."""
    reqs = []
    with open(osp.join(ROOT, 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Put configs, tools and model-index.yml into ``mnc_mm/.mim``.

    mmdet's ``add_mim_extension``: symlinks for an editable install
    (``develop``/``editable_wheel``), copies for a wheel or an sdist.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'copy' if sys.platform == 'win32' else 'symlink'
    elif {'sdist', 'bdist_wheel'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(ROOT, 'mnc_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src, dst = osp.join(ROOT, name), osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def sources(*patterns):
    found = []
    for pattern in patterns:
        found += sorted(glob.glob(osp.join(CSRC, pattern)))
    return found


def get_extensions():
    if os.getenv('MNC_MM_WITH_OPS', '1') == '0':
        print('MNC_MM_WITH_OPS=0: building mnc_mm without mnc_mm._ext')
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import (BuildExtension, CppExtension,
                                               CUDAExtension)
    except ImportError:
        sys.exit('mnc_mm._ext needs torch at build time: install torch first, '
                 'then run `pip install --no-build-isolation -e .` '
                 '(or set MNC_MM_WITH_OPS=0 for a build without ops).')

    include_dirs = [
        osp.join(ROOT, CSRC, 'common'),
        osp.join(ROOT, CSRC, 'common', 'cuda')
    ]
    cxx_flags = ['-O3']
    link_flags = []
    if sys.platform.startswith('linux'):
        # at::parallel_for expands to an OpenMP region in the headers.
        cxx_flags.append('-fopenmp')
        link_flags.append('-fopenmp')
    srcs = sources('pytorch/*.cpp', 'pytorch/cpu/*.cpp')
    define_macros = []
    extra_compile_args = {'cxx': cxx_flags}
    if torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1':
        print('Compiling mnc_mm._ext with CPU and CUDA')
        srcs += sources('pytorch/cuda/*.cu', 'pytorch/cuda/*.cpp')
        define_macros.append(('MNC_MM_WITH_CUDA', None))
        nvcc_flags = os.getenv('MNC_MM_CUDA_ARGS', '').split()
        extra_compile_args['nvcc'] = ['-O3'] + nvcc_flags
        extension = CUDAExtension
    else:
        print('Compiling mnc_mm._ext with CPU only')
        extension = CppExtension
    ext = extension(
        name='mnc_mm._ext',
        sources=srcs,
        include_dirs=include_dirs,
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
        extra_link_args=link_flags)
    return [ext], {'build_ext': BuildExtension}


add_mim_extension()
ext_modules, cmdclass = get_extensions()

setup(
    name='mnc_mm',
    version=read_version(),
    description='MNC and FCIS instance segmentation for MMDetection 3.x',
    long_description=open(osp.join(ROOT, 'README.md')).read()
    if osp.exists(osp.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(include=['mnc_mm', 'mnc_mm.*']),
    include_package_data=True,
    package_data={'mnc_mm.ops': ['csrc/**/*']},
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'tests': parse_requirements('tests.txt'),
        'convert': parse_requirements('convert.txt')
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False)
