"""The ChArUco board's layout (``BoardSpec``) and the calibration's error, without OpenCV at import time
(``handcap calibrate`` checks its arguments before anything heavy loads).

A board is ``squares_x`` x ``squares_y`` chessboard squares of ``square_m`` metres with ArUco markers of
``marker_m`` metres in the white squares (OpenCV's ``cv2.aruco.CharucoBoard``). Its inner chessboard corners,
``(squares_x - 1) * (squares_y - 1)`` of them, are the calibration points: board frame x along the width,
y down the height, z into the board, origin at the board's top-left corner, metres.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DICTIONARIES = ("4X4_50", "4X4_100", "5X5_50", "5X5_100", "5X5_250", "6X6_50", "6X6_250", "7X7_50")
DEFAULT_DICTIONARY = "5X5_100"
DEFAULT_BOARD = (7, 5, 0.035, 0.026)     # squares x, y, square and marker side (m): fits A4 landscape at 100%


class CalibrationError(ValueError):
    """The inputs cannot calibrate the rig (no board in a clip, too few shared frames...); the message
    names the clip and the problem."""


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """A ChArUco board's layout (metres)."""

    squares_x: int = DEFAULT_BOARD[0]
    squares_y: int = DEFAULT_BOARD[1]
    square_m: float = DEFAULT_BOARD[2]
    marker_m: float = DEFAULT_BOARD[3]
    dictionary: str = DEFAULT_DICTIONARY

    def __post_init__(self):
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(f"a board needs at least 3 x 3 squares, got {self.squares_x} x {self.squares_y}")
        if not 0 < self.marker_m < self.square_m:
            raise ValueError(f"the marker side ({self.marker_m} m) must be positive and less than the square side "
                             f"({self.square_m} m)")
        if self.dictionary not in DICTIONARIES:
            raise ValueError(f"unknown dictionary {self.dictionary!r}; one of {', '.join(DICTIONARIES)}")
        markers = (self.squares_x * self.squares_y) // 2
        if markers > int(self.dictionary.split("_")[1]):
            raise ValueError(f"a {self.squares_x} x {self.squares_y} board needs {markers} markers; the dictionary "
                             f"{self.dictionary} has {self.dictionary.split('_')[1]}")

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the squares' area, metres."""
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    def board(self) -> "cv2.aruco.CharucoBoard":
        import cv2
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, "DICT_" + self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_m, self.marker_m, dictionary)

    def corners(self) -> np.ndarray:
        """(N, 3) float64 the inner corners in the board frame (metres, z = 0), indexed by ChArUco id."""
        return np.asarray(self.board().getChessboardCorners(), np.float64).reshape(-1, 3)

    def image(self, pixels_per_square: int, margin_px: int = 0) -> np.ndarray:
        """(H, W) uint8 the board drawn with ``pixels_per_square`` per square and a white margin: board point
        (X, Y) metres lies at pixel centre ((X / square_m) * pixels_per_square + margin_px - 0.5, same for Y)."""
        import cv2
        size = (self.squares_x * pixels_per_square, self.squares_y * pixels_per_square)
        image = self.board().generateImage(size, marginSize=0, borderBits=1)
        return cv2.copyMakeBorder(image, margin_px, margin_px, margin_px, margin_px, cv2.BORDER_CONSTANT, value=255)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
