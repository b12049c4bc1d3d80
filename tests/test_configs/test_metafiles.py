# Copyright (c) OpenMMLab. All rights reserved.
"""model-index.yml and the metafiles agree with the configs on disk."""
import glob
import os
import os.path as osp

import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# every folder of configs but _base_: the two methods and the demo models
FOLDERS = sorted(name for name in os.listdir(osp.join(REPO, 'configs'))
                 if name != '_base_')


def load(path):
    with open(osp.join(REPO, path)) as f:
        return yaml.safe_load(f)


def metafiles():
    return load('model-index.yml')['Import']


def test_model_index_imports_one_metafile_per_config_folder():
    assert sorted(metafiles()) == sorted(
        f'configs/{f}/metafile.yml' for f in FOLDERS)


def test_collections_follow_the_mmdet_schema():
    for path in metafiles():
        meta = load(path)
        for collection in meta['Collections']:
            assert collection['Paper']['URL'].startswith('https://')
            assert osp.isfile(osp.join(REPO, collection['README']))
            assert collection['Metadata']['Architecture']


def test_every_config_has_an_entry_and_every_entry_a_config():
    for path in metafiles():
        meta = load(path)
        collections = {c['Name'] for c in meta['Collections']}
        models = meta.get('Models') or []
        listed = set()
        for model in models:
            assert model['In Collection'] in collections, model['Name']
            assert osp.isfile(osp.join(REPO, model['Config'])), model['Name']
            assert model['Name'] == osp.splitext(
                osp.basename(model['Config']))[0]
            # Weights only with measured results: never a number without
            # a checkpoint behind it.
            assert ('Weights' in model) == bool(model.get('Results')), \
                model['Name']
            listed.add(model['Config'])
        folder = osp.dirname(path)
        on_disk = {osp.relpath(p, REPO) for p in
                   glob.glob(osp.join(REPO, folder, '*.py'))}
        assert on_disk == listed, f'{folder}: configs without an entry ' \
            f'{sorted(on_disk - listed)}'
