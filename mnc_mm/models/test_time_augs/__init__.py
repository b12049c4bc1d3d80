# Copyright (c) OpenMMLab. All rights reserved.
from .instance_tta import InstanceTTAModel, unflip_instances
from .instance_voting import vote_instances

__all__ = ['InstanceTTAModel', 'unflip_instances', 'vote_instances']
