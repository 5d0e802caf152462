"""The hand model: data (open hand or MANO), the torch layer, rotations and the pose prior.

    model = load_hand_model("open", side="right")   # or a path to MANO_RIGHT.pkl / its folder
    layer = HandLayer(model)
    out = layer(betas, pose, transl)                # out.vertices, out.joints, out.keypoints
"""

from .layer import HandLayer, HandOutput
from .model import (JOINT_NAMES, KEYPOINT_NAMES, KEYPOINT_ORDER, NUM_JOINTS, PARENTS, HandModel,
                    HandModelError, load_hand_model)
from .prior import PosePrior

__all__ = ["HandLayer", "HandOutput", "HandModel", "HandModelError", "PosePrior", "load_hand_model",
           "JOINT_NAMES", "KEYPOINT_NAMES", "KEYPOINT_ORDER", "NUM_JOINTS", "PARENTS"]
