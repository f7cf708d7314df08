"""Dense optical flow: the motion both the starter model's encoder and the alignment metrics read."""

import cv2
import numpy as np


def optical_flow(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Dense optical flow [H, W, 2] between two grey uint8 frames (Farneback, with AV-Align's parameters)."""
    return cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
