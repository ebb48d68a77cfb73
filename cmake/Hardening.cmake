# SPDX-License-Identifier: Apache-2.0
# Release hardening: fortify, stack protector, PIE, full RELRO.
#
# PIE goes through CMake rather than raw flags: with position-independent code
# on, every executable is compiled -fPIE and linked -pie (CMP0083, after
# check_pie_supported) and every library is compiled -fPIC. A global
# add_link_options(-pie) would also reach the link of libtokend.so, where clang
# warns that the argument is unused (an error with TOKEND_WERROR). _FORTIFY_SOURCE
# is undefined first: some compilers (Ubuntu's gcc) define it already, and a
# second definition is a warning.
if(NOT TOKEND_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "Rel")
    add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong)
    add_link_options(-Wl,-z,relro,-z,now)
    set(CMAKE_POSITION_INDEPENDENT_CODE ON)
    include(CheckPIESupported)
    check_pie_supported()
endif()
