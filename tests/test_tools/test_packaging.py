# Copyright (c) OpenMMLab. All rights reserved.
"""A real non-editable install, used the OpenMMLab way: ``.mim`` contents,
``mnc_mm::`` base configs, ``mim search/train/test mnc_mm``.

The temporary environment sees the test environment's packages through a
``.pth`` file, and the package is built with ``MNC_MM_WITH_OPS=0`` plus the
already built extension, so nothing is downloaded or recompiled.
"""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def read_requirements(*names):
    """{package: specifier} of requirement files (comments skipped)."""
    from packaging.requirements import Requirement
    found = {}
    for name in names:
        with open(osp.join(REPO, 'requirements', name)) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line and not line.startswith('-'):
                    req = Requirement(line)
                    found[req.name] = req.specifier
    return found


def test_requirements_are_the_ranges_version_check_enforces():
    """No pins at install: a user's environment with another patch release
    or numpy 1.x can take mnc_mm; setuptools is a build requirement only."""
    from packaging.specifiers import SpecifierSet

    from mnc_mm.utils.version_check import COMPATIBLE
    installed = read_requirements('runtime.txt', 'mminstall.txt')
    for name, low, high in COMPATIBLE:
        assert installed[name] == SpecifierSet(f'>={low},<{high}'), name
    assert not [n for n, spec in installed.items()
                if any(s.operator == '==' for s in spec)]
    assert installed['numpy'].contains('1.26.4')
    assert installed['numpy'].contains('2.2.0')
    assert 'setuptools' not in installed
    with open(osp.join(REPO, 'pyproject.toml')) as f:
        assert '"setuptools' in f.read().split('[build-system]')[1]


def _sh(cmd, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1', PIP_NO_INDEX='1')
    env.pop('PYTHONPATH', None)  # only what is installed
    env.update(kwargs.pop('env', {}))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=600, **kwargs)
    assert out.returncode == 0, (cmd, out.stdout[-3000:], out.stderr[-3000:])
    return out.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(python, site-packages) of a venv holding a wheel install of a clean
    copy of the repository (its tracked files)."""
    if shutil.which('git') is None:
        pytest.skip('needs git to list the tracked files')
    ext = glob.glob(osp.join(REPO, 'mnc_mm', '_ext*.so'))
    if not ext:
        pytest.skip('needs the built extension mnc_mm/_ext*.so')
    tmp = tmp_path_factory.mktemp('install')
    clone = tmp / 'clone'
    files = _sh(['git', 'ls-files', '-co', '--exclude-standard'],
                cwd=REPO).split()
    for name in files:
        if osp.isfile(osp.join(REPO, name)):
            os.makedirs(clone / osp.dirname(name), exist_ok=True)
            shutil.copy2(osp.join(REPO, name), clone / name)
    venv = tmp / 'venv'
    _sh([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    python = str(venv / 'bin' / 'python')
    site = _sh([python, '-c', 'import sysconfig; '
                'print(sysconfig.get_paths()["purelib"])']).strip()
    with open(osp.join(site, 'test_env.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    _sh([python, '-m', 'pip', 'install', '-q', '--no-build-isolation',
         '--no-deps', '--ignore-installed', str(clone)],
        cwd=str(tmp), env=dict(MNC_MM_WITH_OPS='0'))
    shutil.copy2(ext[0], osp.join(site, 'mnc_mm'))
    return python, site, tmp


@pytest.mark.slow
def test_wheel_ships_configs_tools_and_model_index(installed):
    python, site, tmp = installed
    out = _sh([python, '-c', 'import mnc_mm, mnc_mm.ops as ops; '
               'ops.load_ext(); print(mnc_mm.__file__)'], cwd=str(tmp))
    assert out.strip() == osp.join(site, 'mnc_mm', '__init__.py')
    mim = osp.join(site, 'mnc_mm', '.mim')
    for name in ('model-index.yml', 'configs/fcis/metafile.yml',
                 'configs/_base_/default_runtime.py',
                 'configs/demo/fcis_r18-tiny_shapes.py',
                 'tools/train.py', 'tools/test.py', 'tools/dist_train.sh'):
        assert osp.isfile(osp.join(mim, name)), name
        assert not osp.islink(osp.join(mim, name)), name


@pytest.mark.slow
def test_mnc_mm_base_config_and_scope(installed):
    python, _, tmp = installed
    child = tmp / 'child.py'
    child.write_text(textwrap.dedent('''
        _base_ = ['mnc_mm::demo/fcis_r18-tiny_shapes.py']
        model = dict(roi_head=dict(mask_head=dict(num_classes=5)))
        '''))
    out = _sh([python, '-c', textwrap.dedent(f'''
        import mnc_mm
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        from mmdet.registry import MODELS
        cfg = Config.fromfile({str(child)!r})
        assert cfg.model.roi_head.mask_head.num_classes == 5
        assert cfg.model.backbone.depth == 18
        with DefaultScope.overwrite_default_scope('mnc_mm'):
            model = MODELS.build(cfg.model)
        print(type(model).__name__)
        ''')], cwd=str(tmp))
    assert out.split()[-1] == 'FCIS'


@pytest.mark.slow
def test_mim_search_train_test(installed, shapes_root, tiny_config_file):
    python, _, tmp = installed
    if importlib.util.find_spec('mim') is None:
        pytest.skip('openmim is not installed (requirements/tests.txt)')
    mim = [python, '-m', 'mim']
    out = _sh(mim + ['search', 'mnc_mm'], cwd=str(tmp))
    assert 'fcis_r50-caffe-c4_ohem_8xb1-16e_coco' in out
    assert 'mnc_vgg16_5stage_8xb1-40k_sbd' in out

    config = tiny_config_file(
        tmp / 'tiny.py', shapes_root, max_iters=2,
        base='mnc_mm::demo/fcis_r18-tiny_shapes.py')
    work = tmp / 'work'
    _sh(mim + ['train', 'mnc_mm', config, '--work-dir', str(work)],
        cwd=str(tmp))
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    out = _sh(mim + ['test', 'mnc_mm', config, '--checkpoint', str(ckpt),
                     '--work-dir', str(tmp / 'test')], cwd=str(tmp))
    assert 'coco/segm_mAP' in out
