// Owning a C library's object: a std::unique_ptr whose deleter is the
// library's own free function, so that every handle is released on every
// path (early returns, exceptions) without a manual free in logic code.
//
//   Handle<cairo_t, cairo_destroy> cr(cairo_create(surface));
#pragma once

#include <memory>

namespace mukaika {

template <auto Free>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <typename T, auto Free>
using Handle = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace mukaika
