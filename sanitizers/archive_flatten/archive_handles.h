// RAII around libarchive's handles, and the thread locale libarchive needs to
// report member names as UTF-8.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include <memory>
#include <stdexcept>

namespace mukaika::arc {

struct ReadFree {
  void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
struct WriteFree {
  void operator()(struct archive* a) const noexcept { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const noexcept { archive_entry_free(e); }
};

using Reader = std::unique_ptr<struct archive, ReadFree>;
using Writer = std::unique_ptr<struct archive, WriteFree>;
using Entry = std::unique_ptr<struct archive_entry, EntryFree>;

inline Reader new_reader() {
  Reader r(archive_read_new());
  if (!r) throw std::bad_alloc();
  return r;
}

inline Writer new_writer() {
  Writer w(archive_write_new());
  if (!w) throw std::bad_alloc();
  return w;
}

inline Entry new_entry() {
  Entry e(archive_entry_new());
  if (!e) throw std::bad_alloc();
  return e;
}

// libarchive converts names to and from "the current locale". The daemon
// runs in the C locale (ASCII), where every Japanese name would fail to
// convert, and setlocale() is process-wide (other threads parse mail at the
// same time). So the calling thread alone switches its LC_CTYPE to C.UTF-8
// for as long as this object lives. Create it before any libarchive handle,
// so that the handles are freed before the locale is restored.
class Utf8ThreadLocale {
 public:
  Utf8ThreadLocale() : previous_(uselocale(utf8())) {
    if (previous_ == locale_t(0)) throw std::runtime_error("uselocale(C.UTF-8) failed");
  }
  ~Utf8ThreadLocale() { uselocale(previous_); }
  Utf8ThreadLocale(const Utf8ThreadLocale&) = delete;
  Utf8ThreadLocale& operator=(const Utf8ThreadLocale&) = delete;

 private:
  static locale_t utf8() {
    // Created once and kept for the life of the process (threads may hold it).
    static const locale_t loc = [] {
      locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
      if (l == locale_t(0))
        throw std::runtime_error("the C.UTF-8 locale is missing (glibc provides it; check the installation)");
      return l;
    }();
    return loc;
  }

  locale_t previous_;
};

}  // namespace mukaika::arc
