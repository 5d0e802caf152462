"""What people's body landmarks say about a hand found in their photo.

- ``wrist_owner``: whose wrist a hand is on. The hand's wrist landmark (hand landmark 0) is compared
  with every person's two pose wrists (BlazePose 15, 16; the person's own left and right); the owner
  is the nearest one within WRIST_NEAR of the hand's size, where no wrist of the other side is about
  as near (within SIDE_MARGIN of the nearest distance). The pose tells a hand's side from the whole
  body (which arm it ends), where the hand landmark network tells it from the hand alone, and is the
  surer of the two on small, gloved or holding hands.
- ``on_wrist``: whether a hand is on a given person's wrist of a given side (a hand read in the
  region made from that wrist, with that side, is that wrist's hand even where other people's
  wrists are near).
- ``on_face``: whether a hand lies on a person's face (the box of pose landmarks 0-10: nose, eyes,
  ears, mouth) without being on any pose wrist: a nose or an eye the landmark network mistook for a
  hand. A hand over a face (framing the eyes, holding a phone) ends at a wrist.

Only people whose person detection scored at least MIN_PERSON_SCORE count (``vouches``): the person
finder keeps weaker detections, and among them are shapes of a room or a street read as a crumpled body.
And a person speaks only for hands of a size their body could have (``fits_body``): a hand's long
side is about 0.4 of a torso at the same depth, so a hand more than MAX_HAND_TO_BODY times the
person's ``body_size`` is not that person's, or the pose is read around a hand held close to the
camera (a close-up: the pose network then invents a small body, or wrists on the fingertips).
Pixels of the photo throughout (x right, y down); sides are the person's own.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .people import Person
from .pose_landmarks import LEFT_WRIST, RIGHT_WRIST

WRIST_NEAR = 0.6         # a pose wrist this near the hand's wrist (fraction of the hand's size) can own it
SIDE_MARGIN = 0.6        # ... unless a wrist of the other side is nearer than nearest / SIDE_MARGIN
MIN_WRIST_VISIBILITY = 0.1
MIN_PERSON_SCORE = 0.5   # people whose detection scored less (MediaPipe Pose's own threshold) vouch for no hand
MAX_HAND_TO_BODY = 1.2   # a hand up to this times the person's body_size can be theirs (0.4 at the body's depth)
FACE_LANDMARKS = tuple(range(11))    # BlazePose: nose, eyes (inner, centre, outer), ears, mouth corners
WRISTS = (("left", LEFT_WRIST), ("right", RIGHT_WRIST))
SHOULDERS, HIPS = (11, 12), (23, 24)  # BlazePose


def hand_size(landmarks: np.ndarray) -> float:
    """(21, 2+) hand landmarks, pixels -> the long side of their box, pixels (at least 1)."""
    return max(float(np.ptp(landmarks[:, :2], axis=0).max()), 1.0)


def vouches(person: Person) -> bool:
    """Whether a person's pose is trusted to say where their hands are (detection score)."""
    return person.score >= MIN_PERSON_SCORE


def body_size(person: Person) -> float:
    """A person's size in pixels: the longer of torso (mid-shoulder to mid-hip) and shoulder width."""
    points = person.landmarks[:, :2]
    torso = np.linalg.norm(points[list(SHOULDERS)].mean(0) - points[list(HIPS)].mean(0))
    shoulders = np.linalg.norm(points[SHOULDERS[0]] - points[SHOULDERS[1]])
    return max(float(torso), float(shoulders), 1.0)


def fits_body(landmarks: np.ndarray, person: Person) -> bool:
    """Whether a hand's (21, 2+) landmarks are small enough to be the person's (MAX_HAND_TO_BODY)."""
    return hand_size(landmarks) <= MAX_HAND_TO_BODY * body_size(person)


def on_wrist(landmarks: np.ndarray, person: Person, side: str) -> bool:
    """Whether a hand's (21, 2+) landmarks start (landmark 0) within WRIST_NEAR of its size from the
    person's pose wrist of that side (a person who ``vouches``, for a hand that ``fits_body``)."""
    index = dict(WRISTS)[side]
    return vouches(person) and fits_body(landmarks, person) and float(np.linalg.norm(person.landmarks[index, :2] - landmarks[0, :2])) <= WRIST_NEAR * hand_size(landmarks)


def wrist_owner(landmarks: np.ndarray, people: list[Person]) -> Optional[tuple[int, str]]:
    """(21, 2+) hand landmarks, pixels -> (person index, "left" | "right") of the pose wrist the hand
    is on, or None (no pose wrist near, or wrists of both sides about as near). Only wrists of people who
    ``vouch`` and whose body the hand ``fits``."""
    near = WRIST_NEAR * hand_size(landmarks)
    candidates = []            # (distance px, person, side)
    for p, person in enumerate(people):
        for side, index in WRISTS:
            if vouches(person) and person.visibility[index] > MIN_WRIST_VISIBILITY and fits_body(landmarks, person):
                distance = float(np.linalg.norm(person.landmarks[index, :2] - landmarks[0, :2]))
                if distance <= near:
                    candidates.append((distance, p, side))
    if not candidates:
        return None
    distance, person, side = min(candidates)
    rivals = [d for d, _, s in candidates if s != side]
    if rivals and min(rivals) * SIDE_MARGIN < distance:
        return None
    return person, side


def face_box(person: Person) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of a person's face landmarks (pixels)."""
    points = person.landmarks[list(FACE_LANDMARKS), :2]
    return np.concatenate([points.min(0), points.max(0)])


def on_face(landmarks: np.ndarray, people: list[Person]) -> bool:
    """Whether the centre of a hand's (21, 2+) landmarks lies in some person's ``face_box`` while the
    hand is on no pose wrist (``wrist_owner`` is None) and ``fits_body``: then it is the face, not a hand."""
    if wrist_owner(landmarks, people) is not None:
        return False
    centre = landmarks[:, :2].mean(0)
    for person in filter(vouches, people):
        if not fits_body(landmarks, person):
            continue           # a hand larger than the person's body is in front of it, not part of its face
        box = face_box(person)
        if box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]:
            return True
    return False
