"""Offscreen OpenGL renderer (moderngl + EGL) for posed hand meshes, one context per process.

The camera is a pinhole with OpenCV intrinsics ``K`` (pixels; x right, y down, z forward, pixel
centres at integer coordinates), so what is drawn lines up exactly with ``K @ X`` projections.
Shading is per pixel in linear RGB: hemisphere ambient + up to ``MAX_LIGHTS`` directional lights
(wrapped Lambert, Blinn-Phong specular), exposure, a soft shoulder, then sRGB encoding.
With ``supersample`` > 1 images are rendered that many times larger and box-filtered down
(anti-aliasing; each step costs about as much as the whole render at 1x).

EGL contexts do not survive ``fork``: the context is created lazily on first use and again in
any process that did not create it (each DataLoader worker gets its own).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Iterable, Iterator

import cv2
import numpy as np

MAX_LIGHTS = 3
IN_FLIGHT = 4      # draws queued ahead of the read-back
VERTEX_FLOATS = 11  # position, normal, albedo, specular, id
NEAR, FAR = 0.01, 20.0  # metres

_VERTEX_SHADER = """
#version 330
uniform vec4 intrinsics;   // fx, fy, cx, cy in pixels
uniform vec2 image_size;   // W, H in pixels of the final image
in vec3 in_pos; in vec3 in_nrm; in vec3 in_alb; in float in_spec; in float in_id;
out vec3 v_pos; out vec3 v_nrm; out vec3 v_alb; out float v_spec; flat out float v_id;
void main() {
    float z = in_pos.z;
    vec2 uv = intrinsics.xy * in_pos.xy / z + intrinsics.zw;       // OpenCV pixel coordinates
    vec2 ndc = 2.0 * (uv + 0.5) / image_size - 1.0;                  // image row v -> GL row v
    float a = (%(far)s + %(near)s) / (%(far)s - %(near)s);
    float b = -2.0 * %(far)s * %(near)s / (%(far)s - %(near)s);
    gl_Position = vec4(ndc * z, a * z + b, z);
    v_pos = in_pos; v_nrm = in_nrm; v_alb = in_alb; v_spec = in_spec; v_id = in_id;
}
""" % {"near": repr(NEAR), "far": repr(FAR)}

_FRAGMENT_SHADER = """
#version 330
uniform int num_lights;
uniform vec3 light_dir[%(n)d];    // unit vectors from the surface toward each light, camera space
uniform vec3 light_col[%(n)d];    // linear RGB radiance
uniform vec3 ambient_up; uniform vec3 ambient_down; uniform vec3 up_dir;
uniform float wrap; uniform float shininess; uniform float exposure;
in vec3 v_pos; in vec3 v_nrm; in vec3 v_alb; in float v_spec; flat in float v_id;
out vec4 frag;
void main() {
    vec3 n = normalize(v_nrm);
    vec3 view = normalize(-v_pos);
    vec3 col = v_alb * mix(ambient_down, ambient_up, 0.5 + 0.5 * dot(n, up_dir));
    for (int i = 0; i < num_lights; ++i) {
        float ndl = dot(n, light_dir[i]);
        float diffuse = max((ndl + wrap) / (1.0 + wrap), 0.0);
        vec3 h = normalize(light_dir[i] + view);
        float spec = ndl > 0.0 ? v_spec * pow(max(dot(n, h), 0.0), shininess) : 0.0;
        col += light_col[i] * (v_alb * diffuse + spec);
    }
    col = exposure * col;
    col = col / (1.0 + 0.25 * col);                                   // soft shoulder, no hard clipping
    col = mix(12.92 * col, 1.055 * pow(col, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, col));
    frag = vec4(clamp(col, 0.0, 1.0), v_id);
}
""" % {"n": MAX_LIGHTS}


@dataclasses.dataclass
class Lighting:
    """Lights and tone, all in camera space; colours linear RGB."""

    directions: np.ndarray          # (n, 3) unit, surface -> light; n <= MAX_LIGHTS
    colors: np.ndarray              # (n, 3) radiance
    ambient_up: np.ndarray          # (3,) ambient from the ``up`` side
    ambient_down: np.ndarray        # (3,) ambient from the opposite side
    up: np.ndarray                  # (3,) unit "sky" direction
    wrap: float = 0.2               # 0 = Lambert, >0 softens the terminator (skin-like)
    shininess: float = 20.0         # Blinn-Phong exponent
    exposure: float = 1.0


@dataclasses.dataclass
class RenderOutput:
    """Final-size layers (S = size), uint8."""

    rgba: np.ndarray       # (S, S, 4) sRGB colour over black; alpha = 255 x the pixel's coverage by any geometry
    hand: np.ndarray       # (S, S) 255 x the pixel's coverage by triangles with id 1 (the hand)


@dataclasses.dataclass
class Draw:
    """One mesh to draw. Per-vertex arrays (N vertices, float32): vertices/normals (N, 3) camera
    space in metres, albedo (N, 3) linear RGB, specular (N,), ids (N,): 1 = hand, 0.5 = other
    geometry, flat per triangle (the id of its last vertex). ``faces`` (F, 3) int32, counter-
    clockwise seen from outside a closed surface (back faces are culled), cached under ``mesh_key``."""

    vertices: np.ndarray
    normals: np.ndarray
    albedo: np.ndarray
    specular: np.ndarray
    ids: np.ndarray
    faces: np.ndarray
    K: np.ndarray            # (3, 3) intrinsics, pixels
    lighting: Lighting
    mesh_key: str = "mesh"
    tag: object = None       # the caller's, handed back with the image


class Renderer:
    """``render(draws) -> iterator of (Draw, RenderOutput)``, in order.

    ``draws`` is pulled lazily, ``IN_FLIGHT`` ahead of the read-back, so that the rasteriser
    (llvmpipe's threads, or a GPU) works while the caller prepares the next draws and composites
    the previous image.
    """

    def __init__(self, size: int = 224, supersample: int = 1):
        self.size = int(size)
        self.supersample = int(supersample)
        self._pid = None

    def _setup(self) -> None:
        import moderngl  # imported here: only rendering processes need GL

        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.front_face = "cw"  # image rows run down (see the vertex shader): outward CCW faces appear CW
        self.prog = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        side = self.size * self.supersample
        self.fbos = [self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer((side, side), 4)],
                                          depth_attachment=self.ctx.depth_renderbuffer((side, side)))
                     for _ in range(IN_FLIGHT)]
        self._capacity = 0
        self._vaos = {}
        self._pid = os.getpid()

    def _vao(self, slot: int, draw: Draw):
        if len(draw.vertices) > self._capacity:  # grow the vertex buffers; vertex arrays are rebuilt
            self._capacity = max(len(draw.vertices), 2 * self._capacity)
            self.vbos = [self.ctx.buffer(reserve=self._capacity * VERTEX_FLOATS * 4) for _ in range(IN_FLIGHT)]
            self._vaos = {}
        key = (slot, draw.mesh_key)
        if key not in self._vaos:
            ibo = self.ctx.buffer(np.ascontiguousarray(draw.faces, np.int32).tobytes())
            self._vaos[key] = self.ctx.vertex_array(
                self.prog, [(self.vbos[slot], "3f 3f 3f 1f 1f", "in_pos", "in_nrm", "in_alb", "in_spec", "in_id")],
                index_buffer=ibo, index_element_size=4)
        return self._vaos[key]

    def _submit(self, slot: int, draw: Draw) -> None:
        vao = self._vao(slot, draw)
        data = np.concatenate([draw.vertices, draw.normals, draw.albedo, draw.specular[:, None], draw.ids[:, None]],
                              axis=1)
        self.vbos[slot].write(np.ascontiguousarray(data, np.float32).tobytes())
        p, K, lighting = self.prog, draw.K, draw.lighting
        p["intrinsics"].value = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
        p["image_size"].value = (float(self.size), float(self.size))
        lights = np.zeros((2, MAX_LIGHTS, 3), np.float32)
        lights[0, :len(lighting.directions)], lights[1, :len(lighting.colors)] = lighting.directions, lighting.colors
        p["num_lights"].value = len(lighting.directions)
        p["light_dir"].write(lights[0].tobytes())
        p["light_col"].write(lights[1].tobytes())
        for name in ("ambient_up", "ambient_down"):
            p[name].value = tuple(float(c) for c in getattr(lighting, name))
        p["up_dir"].value = tuple(float(c) for c in lighting.up)
        p["wrap"].value, p["shininess"].value = float(lighting.wrap), float(lighting.shininess)
        p["exposure"].value = float(lighting.exposure)
        self.fbos[slot].use()
        self.fbos[slot].clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        vao.render(vertices=draw.faces.size)
        if self.ctx.version_code >= 420:
            self.ctx.memory_barrier()  # flushes: Mesa starts rasterising only at a flush, else at the read-back

    def _fetch(self, slot: int) -> RenderOutput:
        side = self.size * self.supersample
        rgba = np.frombuffer(self.fbos[slot].read(components=4), np.uint8).reshape(side, side, 4).copy()
        ids = cv2.extractChannel(rgba, 3)
        cv2.insertChannel(cv2.threshold(ids, 0, 255, cv2.THRESH_BINARY)[1], rgba, 3)  # any geometry
        hand = cv2.threshold(ids, 191, 255, cv2.THRESH_BINARY)[1]                     # id 1 -> alpha 255
        if self.supersample > 1:
            rgba = cv2.resize(rgba, (self.size, self.size), interpolation=cv2.INTER_AREA)
            hand = cv2.resize(hand, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return RenderOutput(rgba=rgba, hand=hand)

    def render(self, draws: Iterable[Draw]) -> Iterator[tuple[Draw, RenderOutput]]:
        if self._pid != os.getpid():
            self._setup()
        draws = iter(draws)
        queue = collections.deque()
        for slot, draw in zip(range(IN_FLIGHT), draws):
            self._submit(slot, draw)
            queue.append((slot, draw))
        while queue:
            slot, draw = queue.popleft()
            out = self._fetch(slot)
            following = next(draws, None)
            if following is not None:
                self._submit(slot, following)
                queue.append((slot, following))
            yield draw, out
