/* The table of model families, keyed by config.json's model_type. Adding a family is one
 * line here plus its folder. */
#include <string.h>

#include "core/model.h"

extern const om_family om_family_qwen;
extern const om_family om_family_mistral;
extern const om_family om_family_glm4;

static const om_family *const families[] = {
    &om_family_qwen,
    &om_family_mistral,
    &om_family_glm4,
};

const om_family *om_family_find(const char *model_type) {
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        for (const char *const *t = families[i]->model_types; *t; t++)
            if (!strcmp(*t, model_type)) return families[i];
    return NULL;
}

const char *om_family_supported_types(void) {
    static char list[512];
    if (list[0]) return list;
    size_t used = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        for (const char *const *t = families[i]->model_types; *t; t++) {
            size_t n = strlen(*t);
            if (used + n + 3 >= sizeof list) break;
            if (used) {
                memcpy(list + used, ", ", 2);
                used += 2;
            }
            memcpy(list + used, *t, n);
            used += n;
        }
    list[used] = 0;
    return list;
}
