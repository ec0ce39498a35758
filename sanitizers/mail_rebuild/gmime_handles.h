// RAII for GMime/GLib handles, so logic code never calls g_object_unref or
// g_free itself.
#pragma once

#include <gmime/gmime.h>

#include <memory>

namespace mukaika::gm {

struct ObjectUnref {
  void operator()(gpointer p) const {
    if (p) g_object_unref(p);
  }
};
struct Free {
  void operator()(gpointer p) const { g_free(p); }
};
struct DateTimeUnref {
  void operator()(GDateTime* p) const {
    if (p) g_date_time_unref(p);
  }
};
struct ParserOptionsFree {
  void operator()(GMimeParserOptions* p) const {
    if (p) g_mime_parser_options_free(p);
  }
};
struct FormatOptionsFree {
  void operator()(GMimeFormatOptions* p) const {
    if (p) g_mime_format_options_free(p);
  }
};
struct ReferencesFree {
  void operator()(GMimeReferences* p) const {
    if (p) g_mime_references_free(p);
  }
};

template <class T>
using Ptr = std::unique_ptr<T, ObjectUnref>;
using CharPtr = std::unique_ptr<char, Free>;
using DateTimePtr = std::unique_ptr<GDateTime, DateTimeUnref>;
using ParserOptionsPtr = std::unique_ptr<GMimeParserOptions, ParserOptionsFree>;
using FormatOptionsPtr = std::unique_ptr<GMimeFormatOptions, FormatOptionsFree>;
using ReferencesPtr = std::unique_ptr<GMimeReferences, ReferencesFree>;

// g_mime_init() once per process; GMime is then safe to use from any thread
// on separate objects.
void ensure_initialized();

}  // namespace mukaika::gm
