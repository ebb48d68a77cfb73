# SPDX-License-Identifier: Apache-2.0
# TokendInstall.cmake — what `cmake --install` puts where (GNUInstallDirs).
#
#   bin/tokend                                     the command and server
#   lib*/libtokend.so.0 (-> .so.0.1.0), .so, .a    libtokend, shared and static
#   lib*/libtokend_fetch.a                         tk_fetch_https over libcurl (static only)
#   include/tokend/*.h                             the public headers
#   lib*/pkgconfig/tokend.pc, tokend_fetch.pc      pkg-config
#   lib*/cmake/tokend/                             find_package(tokend): tokend::tokend,
#                                                  tokend::tokend_static, tokend::fetch
#   lib/systemd/system/tokend.service              the unit (packaging/tokend.service)
#   etc/tokend/tokend.conf                         the example configuration
#   share/man/man*/                                man pages (built from man/*.scd: cmake/man.cmake)
#   share/bash-completion/completions/tokend,      shell completion (completions/: cmake/man.cmake)
#   share/zsh/vendor-completions/_tokend
#   share/doc/tokend/                              README, LICENSE, NOTICE, CHANGELOG, docs/
#
# Every destination is relative to the prefix unless the caller makes it
# absolute, so `cmake --install build --prefix /tmp/x` writes only under
# /tmp/x. A system package passes -DCMAKE_INSTALL_PREFIX=/usr
# -DCMAKE_INSTALL_SYSCONFDIR=/etc (the "deb" preset does), as Debian's
# dh_auto_configure does.
include(CMakePackageConfigHelpers)

set(TOKEND_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/tokend"
    CACHE STRING "Where find_package(tokend) finds tokend-config.cmake (relative to the prefix)")
set(TOKEND_INSTALL_UNITDIR "lib/systemd/system"
    CACHE STRING "Where the systemd unit goes (relative to the prefix, or absolute)")
option(TOKEND_INSTALL_SERVICE "Install the systemd unit and the example configuration" ON)

# ---- the programs and the libraries ------------------------------------------
install(TARGETS tokend RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS tokend_shared tokend_static tokend_fetch
    EXPORT tokend-targets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/tokend DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

# ---- CMake: find_package(tokend [COMPONENTS fetch]) ------------------------------
install(EXPORT tokend-targets NAMESPACE tokend:: DESTINATION ${TOKEND_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tokend-config.cmake.in
    ${PROJECT_BINARY_DIR}/cmake/tokend-config.cmake
    INSTALL_DESTINATION ${TOKEND_INSTALL_CMAKEDIR})
# 0.x: a new minor version may break the API (SOVERSION is the major, 0).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/tokend-config-version.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/tokend-config.cmake
              ${PROJECT_BINARY_DIR}/cmake/tokend-config-version.cmake
        DESTINATION ${TOKEND_INSTALL_CMAKEDIR})

# ---- files that name installed paths ------------------------------------------
# They are written when installing, not when configuring: `cmake --install
# --prefix DIR` (and cpack) must get a tokend.pc, a unit and a tokend.conf
# that name DIR (cmake/TokendInstallConfigure.cmake).
function(tokend_install_configured template destination)
    get_filename_component(name ${template} NAME)
    string(REGEX REPLACE "\\.in$" "" name ${name})
    set(out ${PROJECT_BINARY_DIR}/install-time/${name})
    set(vars "PROJECT_VERSION=${PROJECT_VERSION}" "TOKEND_STATEDIR=${TOKEND_STATEDIR}"
             "TOKEND_PC_LIBDIR=${TOKEND_PC_LIBDIR}" "TOKEND_PC_INCLUDEDIR=${TOKEND_PC_INCLUDEDIR}")
    install(CODE "set(_tokend_in [[${template}]])
        set(_tokend_out [[${out}]])
        set(_tokend_BINDIR [[${CMAKE_INSTALL_BINDIR}]])
        set(_tokend_SYSCONFDIR [[${CMAKE_INSTALL_SYSCONFDIR}]])
        set(_tokend_vars [[${vars}]])
        include([[${PROJECT_SOURCE_DIR}/cmake/TokendInstallConfigure.cmake]])")
    install(FILES ${out} DESTINATION ${destination})
endfunction()

# ---- pkg-config: tokend.pc, tokend_fetch.pc ----------------------------------
# Absolute paths rather than ${pcfiledir}: pkg-config then leaves out
# -I/usr/include and -L/usr/lib/... of a system install, as it should.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(TOKEND_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    set(TOKEND_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(TOKEND_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(TOKEND_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# ---- the service: unit, example configuration ---------------------------------
# packaging/tokend.service and packaging/tokend.conf are configured (@ONLY, at
# install time) with @CMAKE_INSTALL_FULL_BINDIR@, @TOKEND_CONF_DIR@ and
# @TOKEND_STATEDIR@, then installed. The state directory is systemd's
# StateDirectory=tokend: /var/lib/tokend. The man pages are built and
# installed by cmake/man.cmake.
if(NOT DEFINED TOKEND_STATEDIR)
    set(TOKEND_STATEDIR "/var/lib/tokend" CACHE PATH "Where an installed tokend keeps its store and master key")
endif()
foreach(pc tokend tokend_fetch)
    tokend_install_configured(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
if(TOKEND_INSTALL_SERVICE)
    tokend_install_configured(${PROJECT_SOURCE_DIR}/packaging/tokend.service ${TOKEND_INSTALL_UNITDIR})
    tokend_install_configured(${PROJECT_SOURCE_DIR}/packaging/tokend.conf ${CMAKE_INSTALL_SYSCONFDIR}/tokend)
endif()
# For the package's maintainer scripts and conffiles (TokendPackage.cmake).
if(IS_ABSOLUTE "${CMAKE_INSTALL_SYSCONFDIR}")
    set(TOKEND_CONF_DIR "${CMAKE_INSTALL_SYSCONFDIR}/tokend")
else()
    set(TOKEND_CONF_DIR "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}/tokend")
endif()
install(FILES README.md LICENSE NOTICE CHANGELOG.md SECURITY.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md")

# ---- a shared library in a system directory loads at once --------------------
# Installed straight into a directory the dynamic linker searches (/usr/local/lib
# on Debian), libtokend.so.0 is found only once the linker cache knows it:
# refresh it, as `make install` of libtool libraries does. Not for staged
# installs (DESTDIR, packages: the .deb's ldconfig trigger does it) and not as
# a user who cannot.
set(TOKEND_LDCONFIG_CODE [[
    if("$ENV{DESTDIR}" STREQUAL "" AND EXISTS /sbin/ldconfig)
        set(_tokend_libdir "@CMAKE_INSTALL_LIBDIR@")
        if(NOT IS_ABSOLUTE "${_tokend_libdir}")
            set(_tokend_libdir "${CMAKE_INSTALL_PREFIX}/${_tokend_libdir}")
        endif()
        get_filename_component(_tokend_libdir "${_tokend_libdir}" ABSOLUTE)
        # the directories ld.so searches, one per line as "DIR: (from FILE:LINE)"
        execute_process(COMMAND /sbin/ldconfig -v -N -X OUTPUT_VARIABLE _tokend_lddirs ERROR_QUIET)
        string(FIND "\n${_tokend_lddirs}" "\n${_tokend_libdir}:" _tokend_searched)
        if(NOT _tokend_searched EQUAL -1)
            message(STATUS "Refreshing the dynamic linker cache (ldconfig): ${_tokend_libdir}")
            execute_process(COMMAND /sbin/ldconfig RESULT_VARIABLE _tokend_rc ERROR_QUIET)
            if(NOT _tokend_rc EQUAL 0)
                message(STATUS "ldconfig failed (not root?): run it as root before using libtokend.so.0")
            endif()
        endif()
    endif()
]])
string(CONFIGURE "${TOKEND_LDCONFIG_CODE}" TOKEND_LDCONFIG_CODE @ONLY)
install(CODE "${TOKEND_LDCONFIG_CODE}")
