# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py, test.py and the dist_*.sh launchers, run as a user would."""
import hashlib
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Saves each rank's parameters: before training (rank 0) and after it.
DUMP_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankParamDumpHook(Hook):
    def _dump(self, runner, tag):
        model = runner.model.module if hasattr(runner.model, 'module') \\
            else runner.model
        torch.save(model.state_dict(),
                   f'{runner.work_dir}/params_{tag}_rank{get_rank()}.pth')

    def before_train(self, runner):
        self._dump(runner, 'init')

    def after_train(self, runner):
        self._dump(runner, 'final')
'''


@pytest.fixture(scope='module')
def write_config(tiny_config_file):
    """Factory: the tiny config, dumping each rank's parameters."""

    def write(tmp_path, data_root, max_iters=3, ckpt_interval=None):
        (tmp_path / 'rank_dump.py').write_text(DUMP_HOOK)
        return tiny_config_file(
            tmp_path / 'tiny.py', data_root, max_iters, ckpt_interval,
            extra="""
            custom_imports = dict(imports=['mnc_mm', 'rank_dump'])
            custom_hooks = [dict(type='RankParamDumpHook')]
            """)

    return write


def run(cmd, tmp_path, **env):
    environment = dict(os.environ, PYTHON=sys.executable,
                       PYTHONPATH=f'{tmp_path}{os.pathsep}{REPO}', **env)
    environment.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    return subprocess.run(cmd, cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_amp_without_cuda_trains_fcis_in_bf16(tmp_path, shapes_root,
                                              tiny_config_file):
    if torch.cuda.is_available():
        pytest.skip('the CPU fallback is for machines without CUDA')
    work = tmp_path / 'w'
    config = tiny_config_file(
        tmp_path / 'tiny.py', shapes_root, max_iters=2,
        base=osp.join(REPO, 'configs', 'demo', 'fcis_r18-tiny_shapes.py'))
    out = run([sys.executable, 'tools/train.py', config, '--amp',
               '--work-dir', str(work)], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'CPU bfloat16 autocast' in out.stdout
    assert "type='CPUAmpOptimWrapper'" in (work / 'tiny.py').read_text()
    assert (work / 'iter_2.pth').exists()


def test_config_typo_names_the_type(tmp_path, shapes_root, write_config):
    out = run([sys.executable, 'tools/train.py',
               write_config(tmp_path, shapes_root), '--work-dir',
               str(tmp_path / 'w'), '--cfg-options',
               'model.backbone.type=ResNett'], tmp_path)
    assert out.returncode != 0
    assert 'ResNett is not in the mmdet::model registry' in out.stderr


@pytest.fixture(scope='module')
def dist_trained(tmp_path_factory, shapes_root, write_config):
    """3 iterations of the tiny model with tools/dist_train.sh, 2 CPU procs."""
    tmp_path = tmp_path_factory.mktemp('dist')
    config = write_config(tmp_path, shapes_root)
    work = tmp_path / 'work'
    out = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
               str(work)], tmp_path, PORT='29531')
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp_path, config, work


def segm_map(out) -> str:
    """coco/segm_mAP printed by the last evaluation of a tools run."""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines()
             if 'coco/segm_mAP:' in line]
    assert lines, out.stdout[-3000:]
    return lines[-1].split('coco/segm_mAP:')[1].split()[0]


def test_dist_train_on_cpu(dist_trained):
    _, _, work = dist_trained
    init = torch.load(str(work / 'params_init_rank0.pth'))
    ranks = [torch.load(str(work / f'params_final_rank{r}.pth'))
             for r in (0, 1)]
    changed = 0
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), f'{name} differs by rank'
        if value.is_floating_point() and not torch.equal(value, init[name]):
            changed += 1
    assert changed > len(ranks[0]) // 2, 'training did not move the weights'


def test_dist_test_matches_one_process(dist_trained):
    tmp_path, config, work = dist_trained
    ckpt = str(work / 'iter_3.pth')
    metrics = {}
    for procs in ('1', '2'):
        out = run(['bash', 'tools/dist_test.sh', config, ckpt, procs,
                   '--work-dir', str(tmp_path / f'test{procs}')], tmp_path,
                  PORT='29532')
        metrics[procs] = segm_map(out)
    assert metrics['1'] == metrics['2']


def test_publish_then_test_by_url(dist_trained, http_server):
    tmp_path, config, work = dist_trained
    root, base = http_server
    out = run([sys.executable, 'tools/model_converters/publish_model.py',
               str(work / 'iter_3.pth'), str(root / 'tiny.pth')], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    published = out.stdout.strip().splitlines()[-1]
    name = osp.basename(published)
    digest = hashlib.sha256(open(published, 'rb').read()).hexdigest()
    assert name == f'tiny-{digest[:8]}.pth'
    assert sorted(torch.load(published)) == ['meta', 'state_dict']

    torch_home = tmp_path / 'torch_home'
    local = segm_map(run([sys.executable, 'tools/test.py', config, published,
                          '--work-dir', str(tmp_path / 'local')], tmp_path))
    by_url = segm_map(run([sys.executable, 'tools/test.py', config,
                           f'{base}/{name}', '--work-dir',
                           str(tmp_path / 'url')], tmp_path,
                          TORCH_HOME=str(torch_home)))
    assert by_url == local
    cached = torch_home / 'hub' / 'checkpoints' / name
    assert cached.read_bytes() == open(published, 'rb').read()


def test_resume_after_sigkill(tmp_path, shapes_root, write_config):
    """Kill training with SIGKILL mid-run; ``--resume`` picks up the last
    checkpoint and finishes."""
    config = write_config(tmp_path, shapes_root, max_iters=10,
                          ckpt_interval=1)
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{REPO}')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(work)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (work / 'iter_3.pth').exists():
        assert proc.poll() is None, 'training ended before it was killed'
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / 'iter_10.pth').exists()

    out = run([sys.executable, 'tools/train.py', config, '--work-dir',
               str(work), '--resume'], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert '--resume: from the newest complete checkpoint' in out.stdout
    assert 'Iter(train) [ 1/10]' not in out.stdout
    assert 'Iter(train) [10/10]' in out.stdout
    assert (work / 'iter_10.pth').exists()
    assert not [name for name in os.listdir(work) if name.endswith('.tmp')]


# Dies by SIGKILL at the worst moment of a checkpoint save: mmengine has
# removed the previous checkpoint (max_keep_ckpts=1) and truncated
# ``last_checkpoint`` (its plain open('w')), half the new file is written.
KILL_HOOK = '''
import os
import signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillWhileSavingHook(Hook):
    def __init__(self, at_iter):
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.iter + 1 != self.at_iter:
            return
        open(os.path.join(runner.work_dir, 'last_checkpoint'), 'w').close()
        with open(os.path.join(runner.work_dir,
                               f'.iter_{self.at_iter}.pth.a1b2c3d4.tmp'),
                  'wb') as f:
            f.write(b'PK' + bytes(1000))
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_kill_while_saving_keeps_one_checkpoint(tmp_path, shapes_root,
                                                tiny_config_file):
    """max_keep_ckpts=1 and a SIGKILL mid-save: the previous checkpoint
    survives, --resume ignores the empty last_checkpoint and starts from
    it, the temp file is removed and files keep the umask's mode."""
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    config = tiny_config_file(tmp_path / 'tiny.py', shapes_root, 4, extra="""
        custom_imports = dict(imports=['mnc_mm', 'kill_hook'])
        custom_hooks = [dict(type='KillWhileSavingHook', at_iter=3)]
        default_hooks = dict(
            logger=dict(interval=1),
            checkpoint=dict(interval=1, by_epoch=False, max_keep_ckpts=1))
        """)
    work = tmp_path / 'work'
    train = [sys.executable, 'tools/train.py', config, '--work-dir',
             str(work)]
    out = run(train, tmp_path)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    names = set(os.listdir(work))
    assert {'.iter_3.pth.a1b2c3d4.tmp', 'iter_2.pth',
            'last_checkpoint'} <= names, names
    assert not {'iter_1.pth', 'iter_3.pth'} & names, names
    assert (work / 'last_checkpoint').read_text() == ''

    resumed = tiny_config_file(tmp_path / 'resume.py', shapes_root, 4)
    out = run(['bash', '-c', 'umask 002 && exec "$@"', 'train', *train[:2],
               resumed, *train[3:], '--resume'], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f'from the newest complete checkpoint {work / "iter_2.pth"}' \
        in out.stdout
    assert 'Iter(train) [3/4]' in out.stdout
    assert 'Iter(train) [2/4]' not in out.stdout
    assert not [name for name in os.listdir(work) if name.endswith('.tmp')]
    assert (work / 'iter_4.pth').stat().st_mode & 0o777 == 0o664


FAKE_SRUN = """#!/usr/bin/env bash
# Stand-in for Slurm's srun: starts --ntasks copies of the command on this
# machine with the SLURM_* variables a real job step sets.
ntasks=1
while [[ $1 == -* ]]; do
  case $1 in
    --ntasks=*) ntasks=${1#*=} ;;
    -p) shift ;;  # the partition's value
  esac
  shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \\
  SLURM_NODELIST=localhost "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait $pid || status=1; done
exit $status
"""


def test_slurm_train_with_two_tasks(tmp_path, shapes_root, write_config):
    """tools/slurm_train.sh end to end under a fake srun/scontrol."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'scontrol').write_text('#!/usr/bin/env bash\necho 127.0.0.1\n')
    for tool in ('srun', 'scontrol'):
        (bin_dir / tool).chmod(0o755)
    config = write_config(tmp_path, shapes_root, max_iters=2)
    work = tmp_path / 'work'
    out = run(['bash', 'tools/slurm_train.sh', 'cpu', 'tiny', config,
               str(work)], tmp_path, GPUS='2', GPUS_PER_NODE='2',
              MASTER_PORT='29533',
              PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ranks = [torch.load(str(work / f'params_final_rank{r}.pth'))
             for r in (0, 1)]
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), f'{name} differs by rank'
    assert (work / 'iter_2.pth').exists()
