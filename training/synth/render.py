"""Offscreen rasteriser for hand meshes: moderngl on EGL (Mesa llvmpipe on a CPU, the driver on a GPU).

One ``HandRenderer`` per process (EGL contexts do not survive fork: DataLoader workers make
their own, lazily). It draws a posed mesh seen through pinhole intrinsics K with Blinn-Phong
shading and returns the RGBA image; alpha is the exact hand silhouette.

Pixel convention: OpenCV's (pixel centres at integer coordinates, x right, y down), so a
camera-space point X projects to ``K @ X / X_z`` exactly where it is drawn.
"""

from __future__ import annotations

import dataclasses

import numpy as np

VERTEX_SHADER = """
#version 330
uniform vec4 intrinsics;      // fx, fy, cx, cy in pixels
uniform vec2 image_size;      // width, height in pixels
uniform vec2 depth_range;     // near, far in metres
in vec3 position;             // camera space, metres (x right, y down, z forward)
in vec3 normal;
in vec3 albedo;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_albedo;
void main() {
    float z = position.z;
    vec2 pixel = intrinsics.xy * position.xy / z + intrinsics.zw;      // OpenCV pixel coordinates
    vec2 ndc = 2.0 * (pixel + 0.5) / image_size - 1.0;                  // image row 0 -> first row read back
    float n = depth_range.x, f = depth_range.y;
    float z_ndc = (f + n - 2.0 * f * n / z) / (f - n);
    gl_Position = vec4(ndc * z, z_ndc * z, z);
    v_position = position;
    v_normal = normal;
    v_albedo = albedo;
}
"""

FRAGMENT_SHADER = """
#version 330
uniform vec3 light_dir;       // unit vector from the surface toward the light, camera space
uniform vec3 light_color;
uniform vec3 ambient;
uniform float specular;
uniform float shininess;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_albedo;
out vec4 color;
void main() {
    vec3 n = normalize(v_normal);
    vec3 view = normalize(-v_position);
    if (dot(n, view) < 0.0) n = -n;                                     // inner side of thin parts
    float diffuse = max(dot(n, light_dir), 0.0);
    float highlight = pow(max(dot(n, normalize(light_dir + view)), 0.0), shininess);
    vec3 rgb = v_albedo * (ambient + light_color * diffuse) + specular * light_color * highlight;
    color = vec4(rgb, 1.0);
}
"""


@dataclasses.dataclass
class Lighting:
    direction: np.ndarray      # (3,) unit, camera space, from the surface toward the light
    color: np.ndarray          # (3,) linear RGB
    ambient: np.ndarray        # (3,)
    specular: float = 0.15
    shininess: float = 20.0


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit normals of a triangle mesh."""
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12)


class HandRenderer:
    """``render(vertices, faces, albedo, K, lighting) -> (H, W, 4) float32 RGBA in [0, 1]``."""

    def __init__(self, width: int, height: int):
        import moderngl  # imported here: the module is only needed where rendering happens

        self.size = (width, height)
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.program = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.fbo = self.ctx.framebuffer(color_attachments=[self.ctx.texture(self.size, 4, dtype="f1")],
                                        depth_attachment=self.ctx.depth_renderbuffer(self.size))
        self._buffers = None

    def _upload(self, arrays: np.ndarray, faces: np.ndarray):
        """(re)create buffers sized for this mesh; reuse them for the next call of the same size."""
        if self._buffers is None or self._buffers[0].size != arrays.nbytes:
            if self._buffers is not None:
                for b in self._buffers[:2]:
                    b.release()
                self._buffers[2].release()
            vbo = self.ctx.buffer(reserve=arrays.nbytes)
            ibo = self.ctx.buffer(faces.astype("i4").tobytes())
            vao = self.ctx.vertex_array(self.program, [(vbo, "3f 3f 3f", "position", "normal", "albedo")], ibo)
            self._buffers = (vbo, ibo, vao)
        self._buffers[0].write(arrays.tobytes())
        return self._buffers[2]

    def render(self, vertices: np.ndarray, faces: np.ndarray, albedo: np.ndarray, K: np.ndarray,
               lighting: Lighting) -> np.ndarray:
        """vertices (V, 3) metres camera space (z > 0), faces (F, 3), albedo (V, 3) in [0, 1], K (3, 3)."""
        normals = vertex_normals(vertices, faces)
        arrays = np.ascontiguousarray(np.concatenate([vertices, normals, albedo], axis=1), dtype="f4")
        vao = self._upload(arrays, faces)
        depth = vertices[:, 2]
        p = self.program
        p["intrinsics"].value = (K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        p["image_size"].value = self.size
        p["depth_range"].value = (max(0.01, depth.min() * 0.5), depth.max() * 2.0 + 0.1)
        p["light_dir"].value = tuple(lighting.direction)
        p["light_color"].value = tuple(lighting.color)
        p["ambient"].value = tuple(lighting.ambient)
        p["specular"].value = lighting.specular
        p["shininess"].value = lighting.shininess
        self.fbo.use()
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        vao.render()
        data = self.fbo.read(components=4, dtype="f1")
        return np.frombuffer(data, np.uint8).reshape(self.size[1], self.size[0], 4).astype(np.float32) / 255.0
