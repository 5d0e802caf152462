"""Camera calibration of a multi-view rig (``handcap calibrate``): from a ChArUco board filmed by every camera
(``board``, ``intrinsics``, ``extrinsics``), or from the hands alone (``hands``); the result is a cameras file
(``core.multiview.cameras``): view 0 at the origin, the others as R, t relative to it. ``command`` is the
command line; ``spec`` (the board's layout) and ``command`` load no OpenCV or torch at import time.
"""
