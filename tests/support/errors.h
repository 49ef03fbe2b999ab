#pragma once
// The message of the lmsweep::Error a call throws, for tests of what users read.
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"

namespace lmsweep::testing {

// What `f` threw; a test failure (and "") when it threw nothing.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected lmsweep::Error";
  return {};
}

}  // namespace lmsweep::testing
