#version 330 core
// A plain diffuse (Lambert) shader with pyrender's uniform names: about three times faster under
// llvmpipe than pyrender's physically based mesh.frag, and the flat look a CAD drawing wants.
// Primitives without normals (the edge lines) are drawn in their base colour, unlit.

struct DirectionalLight {
    vec3 color;
    float intensity;
    vec3 direction;
};

struct Material {
    vec3 emissive_factor;
    vec4 base_color_factor;
};

uniform Material material;
uniform DirectionalLight directional_lights[MAX_DIRECTIONAL_LIGHTS];
uniform int n_directional_lights;
uniform vec3 ambient_light;

in vec3 frag_position;
#ifdef NORMAL_LOC
in vec3 frag_normal;
#endif

out vec4 frag_color;

void main()
{
    vec3 base = material.base_color_factor.rgb;
    vec3 color = material.emissive_factor;
#ifdef NORMAL_LOC
    vec3 n = normalize(frag_normal);
    vec3 light = ambient_light;
    for (int i = 0; i < n_directional_lights; i++) {
        float facing = max(dot(n, -directional_lights[i].direction), 0.0);
        light += directional_lights[i].color * directional_lights[i].intensity * facing;
    }
    color += base * light;
#else
    color += base;
#endif
    frag_color = vec4(clamp(color, 0.0, 1.0), 1.0);
}
