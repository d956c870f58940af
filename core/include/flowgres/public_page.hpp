// What the public app page shows besides the UI schema (seed §123, §127): its branding and
// notices, its SEO title and description, and input defaults and example fills. Kept on the
// app (apps.public_page), not in a version, so changing the page needs no new version.
// Not for: rendering (web/ renders it with DOM APIs, the daemon escapes it into the HTML head).
#pragma once

#include <string_view>

#include "flowgres/json.hpp"

namespace flowgres {

constexpr size_t kPublicPageMaxBytes = 64 * 1024;

// `section` is "branding", "seo" or "inputs". Members of `patch` replace those of the stored
// section, null removes one. The merged section is checked as a whole; every problem is
// reported at once as VALIDATION_FAILED with fields such as "branding.accent_color".
// Returns the whole document with the section replaced.
//
//   branding: title, tagline, logo_url (https), accent_color and background_color (#rgb or
//             #rrggbb), theme (light, dark, auto), submit_label, anonymous_notice,
//             terms {text, url}, privacy {text, url}, sign_in_url (https), hide_powered_by
//   seo:      title, description, image_url (https), lang (a BCP 47 tag), noindex
//   inputs:   defaults {input_key: string | number | boolean},
//             examples [{label, inputs {input_key: value}}] (at most 12)
//
// Text may hold any characters a person types, markup included: the page shows it as text.
Json merge_public_page(const json_t *current, std::string_view section, const json_t *patch);

}  // namespace flowgres
