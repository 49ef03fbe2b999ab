# Helpers shared by the targets that use LibTorch, and the checks of the LibTorch found.
#
# Debian's libtorch-dev is a CPU build with Gloo; the official LibTorch 2.x with CUDA (PyPI's
# torch wheel, or pytorch.org's zip) also has NCCL. LMSWEEP_HAVE_CUDA / LMSWEEP_HAVE_NCCL /
# LMSWEEP_HAVE_GLOO tell the code which c10d backends exist.
#
# Included after find_package(Torch), MPI, Boost, fmt, ICU and OpenCV (it checks their ABI).
include(CheckIncludeFileCXX)

# "X.Y.Z" from a header's #define <PREFIX>MAJOR / MINOR / PATCH lines (torch/version.h, nccl.h);
# `out` is left unset when they are not all there.
function(lmsweep_header_version header prefix out)
  file(STRINGS "${header}" _lines REGEX "^#define ${prefix}(MAJOR|MINOR|PATCH) ")
  set(_v)
  foreach(_part MAJOR MINOR PATCH)
    foreach(_line IN LISTS _lines)
      if(_line MATCHES "^#define ${prefix}${_part} +([0-9]+)")
        list(APPEND _v "${CMAKE_MATCH_1}")
      endif()
    endforeach()
  endforeach()
  if(_v MATCHES "^[0-9]+;[0-9]+;[0-9]+$")
    string(REPLACE ";" "." _version "${_v}")
    set(${out} "${_version}" PARENT_SCOPE)
  endif()
endfunction()

# ---[ Which LibTorch: its own libraries, its version
#
# TorchConfig looks for libtorch / libc10 with find_library(... PATHS <prefix>/lib), and PATHS
# come after the system directories: with Debian's libtorch-dev installed beside a pip torch,
# a 2.x build got Debian's /usr/lib/x86_64-linux-gnu/libc10.so (1.13). Pin each one to the
# LibTorch whose headers we compile against.
if(TORCH_INSTALL_PREFIX AND IS_DIRECTORY "${TORCH_INSTALL_PREFIX}/lib")
  set(_vars TORCH_LIBRARY c10_LIBRARY C10_CUDA_LIBRARY kineto_LIBRARY)
  set(_names torch c10 c10_cuda kineto)
  foreach(_var _name IN ZIP_LISTS _vars _names)
    if(NOT ${_var})
      continue()
    endif()
    get_filename_component(_dir "${${_var}}" DIRECTORY)
    get_filename_component(_dir "${_dir}" REALPATH)
    get_filename_component(_own_dir "${TORCH_INSTALL_PREFIX}/lib" REALPATH)
    if(_dir STREQUAL _own_dir)
      continue()
    endif()
    unset(_lmsweep_own_lib CACHE)
    find_library(_lmsweep_own_lib NAMES ${_name} PATHS "${TORCH_INSTALL_PREFIX}/lib" NO_DEFAULT_PATH)
    if(_lmsweep_own_lib)
      message(STATUS "lmsweep: ${_var} was ${${_var}} (another LibTorch); using ${_lmsweep_own_lib}")
      set(_fixed)
      foreach(_lib IN LISTS TORCH_LIBRARIES)
        if(_lib STREQUAL "${${_var}}")
          list(APPEND _fixed "${_lmsweep_own_lib}")
        else()
          list(APPEND _fixed "${_lib}")
        endif()
      endforeach()
      set(TORCH_LIBRARIES "${_fixed}")
      set(${_var} "${_lmsweep_own_lib}" CACHE FILEPATH "Path to a library." FORCE)
    endif()
    unset(_lmsweep_own_lib CACHE)
  endforeach()
endif()

# The headers' version, as compat::torch_version() reports it (TorchConfigVersion.cmake may
# differ from it or be absent).
set(LMSWEEP_TORCH_VERSION "${Torch_VERSION}")
set(_version_h)
foreach(_dir IN LISTS TORCH_INCLUDE_DIRS)
  if(NOT _version_h AND EXISTS "${_dir}/torch/version.h")
    set(_version_h "${_dir}/torch/version.h")
  endif()
endforeach()
if(_version_h)
  lmsweep_header_version("${_version_h}" TORCH_VERSION_ LMSWEEP_TORCH_VERSION)
endif()

# ---[ libstdc++ before LibTorch
#
# PyPI's torch (manylinux_2_28, built with a newer GCC than Debian 12's) carries part of
# libstdc++ (libstdc++_nonshared: std::filesystem, std::chrono::tzdb, ...) and exports it from
# libtorch.so and libtorch_cpu.so. Those come before libstdc++.so.6 in an executable's
# DT_NEEDED list, so their copies interposed the system's for our code as well:
# std::filesystem::remove_all in a test called libtorch.so's copy, which jumped to address 0.
# So every executable names libstdc++ first, and our calls (and LibTorch's to the same
# functions) bind to the system's libstdc++.
set(LMSWEEP_STDCXX_FIRST OFF)
set(_exports_std OFF)
foreach(_lib IN LISTS TORCH_LIBRARY c10_LIBRARY)
  if(CMAKE_NM AND EXISTS "${_lib}")
    get_filename_component(_dir "${_lib}" DIRECTORY)
    foreach(_file "${_dir}/libtorch.so" "${_dir}/libtorch_cpu.so")
      if(EXISTS "${_file}" AND NOT _exports_std)
        execute_process(COMMAND "${CMAKE_NM}" -D --defined-only "${_file}"
                        OUTPUT_VARIABLE _symbols ERROR_QUIET RESULT_VARIABLE _rc)
        if(_rc EQUAL 0 AND _symbols MATCHES " [TW] _ZNSt10filesystem")
          set(_exports_std ON)
          set(_exporter "${_file}")
        endif()
      endif()
    endforeach()
  endif()
endforeach()
if(_exports_std AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(LMSWEEP_STDCXX_FIRST ON)
  string(APPEND CMAKE_EXE_LINKER_FLAGS " -Wl,--push-state,--no-as-needed,-lstdc++,--pop-state")
  message(STATUS "lmsweep: ${_exporter} exports libstdc++'s std::filesystem: executables link libstdc++ first")
endif()

# PyPI's torch's caffe2::mkl asks for link directories under an empty MKL_ROOT (/lib/intel64,
# /lib/win-x64, ...): keep only those that exist, so that they do not end up in every RUNPATH.
if(TARGET caffe2::mkl)
  get_target_property(_dirs caffe2::mkl INTERFACE_LINK_DIRECTORIES)
  if(_dirs)
    set(_kept)
    foreach(_dir IN LISTS _dirs)
      if(IS_DIRECTORY "${_dir}" AND NOT _dir STREQUAL "/lib")
        list(APPEND _kept "${_dir}")
      endif()
    endforeach()
    set_property(TARGET caffe2::mkl PROPERTY INTERFACE_LINK_DIRECTORIES "${_kept}")
  endif()
endif()

# ---[ fmt
#
# PyPI's torch ships its own fmt headers in its include/ (fmt 12 in 2.11), and that folder comes
# before /usr/include on the command line; but we link the system's libfmt (Debian 12: fmt 9),
# and LibTorch exports no fmt symbols. Code of ours calling fmt in a LibTorch target would be
# compiled against one fmt and linked against the other (undefined fmt::v12::vformat). So the
# system fmt's headers go first: a folder holding only a link to them, ahead of LibTorch's.
set(LMSWEEP_FMT_OVERRIDE_DIR "")
set(_torch_fmt "")
foreach(_dir IN LISTS TORCH_INCLUDE_DIRS)
  if(NOT _torch_fmt AND IS_DIRECTORY "${_dir}/fmt")
    set(_torch_fmt "${_dir}/fmt")
  endif()
endforeach()
set(_system_fmt "")
if(_torch_fmt AND TARGET fmt::fmt)
  get_target_property(_dirs fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_dir IN LISTS _dirs)
    if(NOT _system_fmt AND EXISTS "${_dir}/fmt/core.h")
      set(_system_fmt "${_dir}/fmt")
    endif()
  endforeach()
endif()
if(_system_fmt)
  get_filename_component(_a "${_torch_fmt}" REALPATH)
  get_filename_component(_b "${_system_fmt}" REALPATH)
  if(NOT _a STREQUAL _b)
    function(_lmsweep_fmt_version dir out)
      set(${out} "?" PARENT_SCOPE)
      foreach(_h base.h core.h)
        if(EXISTS "${dir}/${_h}")
          file(STRINGS "${dir}/${_h}" _line REGEX "^#define FMT_VERSION [0-9]+")
          if(_line MATCHES "FMT_VERSION ([0-9]+)")
            math(EXPR _major "${CMAKE_MATCH_1} / 10000")
            math(EXPR _minor "${CMAKE_MATCH_1} / 100 % 100")
            set(${out} "${_major}.${_minor}" PARENT_SCOPE)
            return()
          endif()
        endif()
      endforeach()
    endfunction()
    _lmsweep_fmt_version("${_torch_fmt}" _torch_fmt_version)
    _lmsweep_fmt_version("${_system_fmt}" _system_fmt_version)
    set(LMSWEEP_FMT_OVERRIDE_DIR "${CMAKE_BINARY_DIR}/lmsweep-system-fmt")
    file(MAKE_DIRECTORY "${LMSWEEP_FMT_OVERRIDE_DIR}")
    file(REMOVE "${LMSWEEP_FMT_OVERRIDE_DIR}/fmt")
    file(CREATE_LINK "${_b}" "${LMSWEEP_FMT_OVERRIDE_DIR}/fmt" SYMBOLIC)
    list(PREPEND TORCH_INCLUDE_DIRS "${LMSWEEP_FMT_OVERRIDE_DIR}")
    foreach(_target torch torch_library torch_cpu torch_cpu_library torch_cuda torch_cuda_library c10 c10_cuda
                    headeronly)
      if(TARGET ${_target})
        get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
        if(_dirs)
          set_property(TARGET ${_target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES
                       "${LMSWEEP_FMT_OVERRIDE_DIR};${_dirs}")
        endif()
      endif()
    endforeach()
    message(STATUS "lmsweep: LibTorch's own fmt headers (${_torch_fmt_version}) are shadowed by the system's "
                   "(${_system_fmt_version}, ${_system_fmt}), whose libfmt is linked")
  endif()
endif()

# ---[ The C++ ABI
#
# std::string and friends cross between LibTorch, the system libraries (Boost, fmt, ICU,
# OpenCV) and our layers, so all must use the same libstdc++ ABI. TorchConfig of a
# pre-C++11-ABI LibTorch sets -D_GLIBCXX_USE_CXX11_ABI=0 in TORCH_CXX_FLAGS (LibTorch < 2.7);
# LibTorch >= 2.7 has only the C++11 ABI and sets nothing, so without the flag we read it off
# libc10's exported symbols.
function(_lmsweep_uses_cxx11_abi file out)
  set(${out} "" PARENT_SCOPE)
  if(file AND EXISTS "${file}")
    file(STRINGS "${file}" _hit REGEX "__cxx11" LIMIT_COUNT 1)
    if(_hit)
      set(${out} 1 PARENT_SCOPE)
    endif()
  endif()
endfunction()

if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])")
  set(LMSWEEP_TORCH_CXX11_ABI ${CMAKE_MATCH_1})
else()
  set(_c10 "${c10_LIBRARY}")
  if(NOT _c10 AND TARGET c10)
    get_target_property(_c10 c10 LOCATION)
  endif()
  _lmsweep_uses_cxx11_abi("${_c10}" _abi)
  if(_abi)
    set(LMSWEEP_TORCH_CXX11_ABI 1)
  else()
    set(LMSWEEP_TORCH_CXX11_ABI 0)
  endif()
endif()
if(LMSWEEP_TORCH_CXX11_ABI STREQUAL 0)
  set(_new_abi_libs)
  foreach(_target Boost::program_options fmt::fmt ICU::uc opencv_core)
    if(TARGET ${_target})
      get_target_property(_file ${_target} LOCATION)
      _lmsweep_uses_cxx11_abi("${_file}" _abi)
      if(_abi)
        list(APPEND _new_abi_libs "${_target} (${_file})")
      endif()
    endif()
  endforeach()
  if(_new_abi_libs)
    list(JOIN _new_abi_libs ", " _new_abi_libs)
    message(FATAL_ERROR
      "LibTorch ${LMSWEEP_TORCH_VERSION} at ${TORCH_INSTALL_PREFIX} uses the pre-C++11 ABI "
      "(_GLIBCXX_USE_CXX11_ABI=0), but ${_new_abi_libs} use the C++11 ABI: std::string could not "
      "cross between them. Use a C++11-ABI LibTorch: PyPI's torch >= 2.7 "
      "(bash scripts/setup-cuda-libtorch.sh), or pytorch.org's libtorch-cxx11-abi-shared-with-deps zip "
      "(point CMAKE_PREFIX_PATH at its folder).")
  endif()
endif()

# ---[ Gloo
set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
set(CMAKE_REQUIRED_FLAGS "-std=c++17")
check_include_file_cxx("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp" LMSWEEP_HAVE_GLOO_HEADER)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_FLAGS)

# ---[ CUDA
set(LMSWEEP_HAVE_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(LMSWEEP_HAVE_CUDA ON)
endif()
set(LMSWEEP_CUDA_VERSION "")
if(LMSWEEP_HAVE_CUDA)
  if(CUDAToolkit_VERSION_MAJOR)
    set(LMSWEEP_CUDA_VERSION "${CUDAToolkit_VERSION_MAJOR}.${CUDAToolkit_VERSION_MINOR}")
  elseif(CUDA_VERSION_STRING)
    set(LMSWEEP_CUDA_VERSION "${CUDA_VERSION_STRING}")
  endif()
endif()

# ---[ NCCL
#
# c10d's ProcessGroupNCCL.hpp needs nccl.h, and its class layout depends on NCCL_VERSION_CODE
# (NCCL_HAS_CONFIG, NCCL_HAS_COMM_SPLIT, ...): the header must be the NCCL LibTorch was built
# with. PyPI's torch brings it as a sibling package, site-packages/nvidia/nccl.
set(LMSWEEP_WITH_NCCL AUTO CACHE STRING
    "c10d's NCCL backend: AUTO (when LibTorch has CUDA and nccl.h and libnccl are found), ON (required), OFF")
set_property(CACHE LMSWEEP_WITH_NCCL PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${LMSWEEP_WITH_NCCL}" _nccl_mode)
if(NOT _nccl_mode STREQUAL "AUTO")
  if(LMSWEEP_WITH_NCCL)
    set(_nccl_mode ON)
  else()
    set(_nccl_mode OFF)
  endif()
endif()

set(LMSWEEP_HAVE_NCCL OFF)
set(LMSWEEP_NCCL_VERSION "")
set(LMSWEEP_TORCH_NCCL_VERSION "")
if(NOT _nccl_mode STREQUAL "OFF")
  if(NOT LMSWEEP_HAVE_CUDA)
    if(_nccl_mode STREQUAL "ON")
      message(FATAL_ERROR
        "LMSWEEP_WITH_NCCL=ON, but LibTorch ${LMSWEEP_TORCH_VERSION} at ${TORCH_INSTALL_PREFIX} has no CUDA: "
        "build against the CUDA LibTorch (bash scripts/setup-cuda-libtorch.sh, or "
        "-DCMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)'))")
    endif()
  else()
    # Where to look, first found first: the user's, the torch wheel's, the CUDA toolkit's.
    set(_hints)
    foreach(_root IN ITEMS "${NCCL_ROOT}" "$ENV{NCCL_ROOT}" "$ENV{NCCL_HOME}" "$ENV{NCCL_DIR}")
      if(_root)
        list(APPEND _hints "${_root}")
      endif()
    endforeach()
    if(TORCH_INSTALL_PREFIX)
      get_filename_component(_p "${TORCH_INSTALL_PREFIX}/../nvidia/nccl" ABSOLUTE)
      list(APPEND _hints "${_p}")
    endif()
    if(Torch_DIR)
      get_filename_component(_p "${Torch_DIR}/../../../../nvidia/nccl" ABSOLUTE)  # site-packages/torch/share/cmake/Torch
      list(APPEND _hints "${_p}")
    endif()
    foreach(_root IN ITEMS "${CUDAToolkit_LIBRARY_ROOT}" "${CUDAToolkit_TARGET_DIR}" "${CUDA_TOOLKIT_ROOT_DIR}"
                           "$ENV{CUDA_HOME}" "$ENV{CUDA_PATH}")
      if(_root)
        list(APPEND _hints "${_root}")
      endif()
    endforeach()
    foreach(_inc IN LISTS CUDAToolkit_INCLUDE_DIRS)
      get_filename_component(_p "${_inc}/.." ABSOLUTE)
      list(APPEND _hints "${_p}")
    endforeach()
    list(REMOVE_DUPLICATES _hints)

    find_path(LMSWEEP_NCCL_INCLUDE_DIR nccl.h HINTS ${_hints} PATH_SUFFIXES include
              DOC "Folder of nccl.h (the NCCL LibTorch was built with)")
    # libnccl.so where there is a development link, libnccl.so.2 where only the runtime is (the wheel).
    find_library(LMSWEEP_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${_hints}
                 PATH_SUFFIXES lib lib64 DOC "libnccl (the NCCL LibTorch loads)")

    if(LMSWEEP_NCCL_INCLUDE_DIR AND EXISTS "${LMSWEEP_NCCL_INCLUDE_DIR}/nccl.h")
      lmsweep_header_version("${LMSWEEP_NCCL_INCLUDE_DIR}/nccl.h" NCCL_ LMSWEEP_NCCL_VERSION)
    endif()

    if(LMSWEEP_NCCL_INCLUDE_DIR AND LMSWEEP_NCCL_LIBRARY AND LMSWEEP_NCCL_VERSION)
      set(LMSWEEP_HAVE_NCCL ON)
    elseif(_nccl_mode STREQUAL "ON")
      string(REGEX REPLACE "\\..*" "" _cuda_major "${LMSWEEP_CUDA_VERSION}")
      list(JOIN _hints ", " _hints)
      message(FATAL_ERROR
        "LMSWEEP_WITH_NCCL=ON, but NCCL was not found (nccl.h: ${LMSWEEP_NCCL_INCLUDE_DIR}, libnccl: "
        "${LMSWEEP_NCCL_LIBRARY}; searched ${_hints} and the system): install the NCCL LibTorch was built "
        "with (pip install nvidia-nccl-cu${_cuda_major} into torch's venv, or libnccl-dev), or set NCCL_ROOT to its folder")
    else()
      message(STATUS "lmsweep: NCCL not found (nccl.h: ${LMSWEEP_NCCL_INCLUDE_DIR}, libnccl: ${LMSWEEP_NCCL_LIBRARY}); "
                     "trial groups on GPUs need it: set NCCL_ROOT, or -DLMSWEEP_WITH_NCCL=ON to make it required")
    endif()

    # The NCCL LibTorch was built with: the wheel pins its nvidia-nccl-cuXX package.
    if(TORCH_INSTALL_PREFIX)
      file(GLOB _metadata "${TORCH_INSTALL_PREFIX}/../torch-*.dist-info/METADATA")
      foreach(_file IN LISTS _metadata)
        file(STRINGS "${_file}" _req REGEX "^Requires-Dist: nvidia-nccl-cu[0-9]+ *==")
        if(_req MATCHES "==([0-9]+\\.[0-9]+\\.[0-9]+)")
          set(LMSWEEP_TORCH_NCCL_VERSION "${CMAKE_MATCH_1}")
        endif()
      endforeach()
    endif()
    if(LMSWEEP_HAVE_NCCL AND LMSWEEP_TORCH_NCCL_VERSION
       AND NOT LMSWEEP_TORCH_NCCL_VERSION VERSION_EQUAL LMSWEEP_NCCL_VERSION)
      message(WARNING
        "lmsweep: nccl.h in ${LMSWEEP_NCCL_INCLUDE_DIR} is NCCL ${LMSWEEP_NCCL_VERSION}, but LibTorch "
        "${LMSWEEP_TORCH_VERSION} was built with NCCL ${LMSWEEP_TORCH_NCCL_VERSION}. ProcessGroupNCCL's layout "
        "depends on the NCCL version: point NCCL_ROOT (or LMSWEEP_NCCL_INCLUDE_DIR / LMSWEEP_NCCL_LIBRARY) "
        "at NCCL ${LMSWEEP_TORCH_NCCL_VERSION}, e.g. the torch wheel's site-packages/nvidia/nccl.")
    endif()
  endif()
endif()

# ---[ Functions for the targets

function(lmsweep_use_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  target_include_directories(${target} SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
endfunction()

# LMSWEEP_HAVE_CUDA / LMSWEEP_HAVE_NCCL / LMSWEEP_HAVE_GLOO for the code that branches on the
# LibTorch build (src/compat, dist/, launcher/version.cpp). With NCCL, also what c10d's
# ProcessGroupNCCL.hpp needs: USE_C10D_NCCL, nccl.h, libnccl.
function(lmsweep_torch_backend_definitions target)
  if(LMSWEEP_HAVE_CUDA)
    target_compile_definitions(${target} PRIVATE LMSWEEP_HAVE_CUDA=1)
  endif()
  if(LMSWEEP_HAVE_NCCL)
    target_compile_definitions(${target} PRIVATE LMSWEEP_HAVE_NCCL=1 USE_C10D_NCCL=1)
    target_include_directories(${target} SYSTEM PRIVATE ${LMSWEEP_NCCL_INCLUDE_DIR})
    target_link_libraries(${target} PRIVATE ${LMSWEEP_NCCL_LIBRARY})
  endif()
  if(LMSWEEP_HAVE_GLOO_HEADER)
    target_compile_definitions(${target} PRIVATE LMSWEEP_HAVE_GLOO=1)
  endif()
endfunction()

# ---[ Summary
set(_cuda OFF)
if(LMSWEEP_HAVE_CUDA)
  set(_cuda ON)
endif()
set(_nccl OFF)
if(LMSWEEP_HAVE_NCCL)
  set(_nccl "ON (${LMSWEEP_NCCL_VERSION}, ${LMSWEEP_NCCL_LIBRARY})")
endif()
set(_gloo OFF)
if(LMSWEEP_HAVE_GLOO_HEADER)
  set(_gloo ON)
endif()
# "Open MPI v4.1.4, package: Debian OpenMPI, ..." -> "Open MPI v4.1.4"
if(NOT MPI_CXX_FOUND)
  set(LMSWEEP_MPI_IMPL "OFF")
elseif(MPI_CXX_VERSION)
  set(LMSWEEP_MPI_IMPL "MPI ${MPI_CXX_VERSION}")
else()
  set(LMSWEEP_MPI_IMPL "ON")
endif()
if(MPI_CXX_FOUND AND MPI_CXX_LIBRARY_VERSION_STRING AND NOT MPI_CXX_LIBRARY_VERSION_STRING STREQUAL "NOTFOUND")
  string(REGEX REPLACE "[,\n].*" "" LMSWEEP_MPI_IMPL "${MPI_CXX_LIBRARY_VERSION_STRING}")
  string(REGEX REPLACE "[ \t]+" " " LMSWEEP_MPI_IMPL "${LMSWEEP_MPI_IMPL}")
  string(STRIP "${LMSWEEP_MPI_IMPL}" LMSWEEP_MPI_IMPL)
endif()
message(STATUS "lmsweep: LibTorch ${LMSWEEP_TORCH_VERSION}, CUDA ${_cuda}, NCCL ${_nccl}, Gloo ${_gloo}, MPI ${LMSWEEP_MPI_IMPL}")
set(_detail "LibTorch at ${TORCH_INSTALL_PREFIX}, C++11 ABI ${LMSWEEP_TORCH_CXX11_ABI}")
if(LMSWEEP_CUDA_VERSION)
  string(APPEND _detail ", CUDA toolkit ${LMSWEEP_CUDA_VERSION}")
endif()
if(LMSWEEP_HAVE_NCCL)
  string(APPEND _detail ", nccl.h in ${LMSWEEP_NCCL_INCLUDE_DIR}")
endif()
if(LMSWEEP_TORCH_NCCL_VERSION)
  string(APPEND _detail ", LibTorch built with NCCL ${LMSWEEP_TORCH_NCCL_VERSION}")
endif()
message(STATUS "lmsweep: ${_detail}")
