// What office.strip_active removed from one document, by category, for the
// notice (one line each) and the audit trail.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "sanitizer.h"

namespace mukaika::office_strip {

enum class Finding : std::size_t {
  Macros,         // VBA projects, Basic/script libraries, macro data
  ActiveX,        // ActiveX and form controls that run code
  Embedded,       // OLE objects, embedded packages and documents
  External,       // links to other files or servers: templates, linked objects and images, data connections
  Dde,            // DDE / DDEAUTO fields and Excel DDE links
  Fields,         // other fields that fetch or run something (INCLUDETEXT, MACROBUTTON, ...)
  CustomUi,       // ribbon customisations with callbacks, key bindings, toolbars
  Xlm,            // Excel 4.0 macro sheets, Auto_Open names, macro functions in formulas
  Events,         // event handlers, action buttons that run programs, animation commands
  Hyperlinks,     // links to outside targets (the text stays)
  Media,          // audio, video, 3D models, embedded fonts, add-in task panes
  Images,         // pictures whose bytes are not what they claim, or formats we do not keep (SVG)
  Hidden,         // parts nobody sees: thumbnails, printer settings, custom XML, signatures
  kCount,
};

constexpr std::size_t kFindingCount = static_cast<std::size_t>(Finding::kCount);

struct Findings {
  std::array<int, kFindingCount> counts{};

  void add(Finding f, int n = 1) { counts[static_cast<std::size_t>(f)] += n; }
  int count(Finding f) const { return counts[static_cast<std::size_t>(f)]; }
  // Anything a person could notice (everything except Hidden).
  bool visible() const {
    for (std::size_t i = 0; i < kFindingCount; ++i)
      if (counts[i] > 0 && static_cast<Finding>(i) != Finding::Hidden) return true;
    return false;
  }
};

// The note for one category: stable code ("office.macros") and a sentence.
Reason finding_reason(Finding f, int count);
// Short label for the summary line ("マクロ" / "macros").
std::string finding_label(Finding f, Language lang);

}  // namespace mukaika::office_strip
