# SPDX-License-Identifier: Apache-2.0
# The project's version, once: project(VERSION) in CMakeLists.txt. It goes
# into a generated header for tk_version() (src/core/version.c), and the
# public header's TK_VERSION / TK_VERSION_NUMBER must say the same (checked
# here, so a release cannot ship a header and a library that disagree).
set(TOKEND_VERSION_GEN_DIR ${CMAKE_BINARY_DIR}/generated)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${TOKEND_VERSION_GEN_DIR}/core/version_gen.h @ONLY)
# For every target that compiles src/core/version.c: libtokend, and the
# fuzzers' own copy of the core (fuzz/CMakeLists.txt).
include_directories(${TOKEND_VERSION_GEN_DIR})

file(READ ${PROJECT_SOURCE_DIR}/include/tokend/tokend.h _tk_header)
string(REGEX MATCH "#define TK_VERSION \"([^\"]*)\"" _ ${_tk_header})
set(_tk_header_version ${CMAKE_MATCH_1})
string(REGEX MATCH "#define TK_VERSION_NUMBER ([0-9]+)" _ ${_tk_header})
set(_tk_header_number ${CMAKE_MATCH_1})
math(EXPR _tk_number "${PROJECT_VERSION_MAJOR} * 1000000 + ${PROJECT_VERSION_MINOR} * 1000 + ${PROJECT_VERSION_PATCH}")
if(NOT _tk_header_version STREQUAL PROJECT_VERSION OR NOT _tk_header_number STREQUAL _tk_number)
    message(FATAL_ERROR "include/tokend/tokend.h says TK_VERSION \"${_tk_header_version}\" / TK_VERSION_NUMBER "
                        "${_tk_header_number}; project(VERSION) is ${PROJECT_VERSION} (${_tk_number}): make them agree")
endif()
