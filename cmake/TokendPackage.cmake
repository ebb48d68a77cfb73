# SPDX-License-Identifier: Apache-2.0
# TokendPackage.cmake — `cpack` makes tokend_<version>_<arch>.deb of what
# `cmake --install` installs (cmake/TokendInstall.cmake): the binary,
# libtokend with its headers, pkg-config and CMake files, the man pages, the
# systemd unit and /etc/tokend/tokend.conf (a conffile). Its maintainer
# scripts (packaging/deb/) create the system user tokend and the state
# directory, and enable the unit. Build it from a configuration for /usr:
#
#   cmake --preset deb && cmake --build --preset deb && cpack --preset deb
#
# (packaging/README.md; tests/install/test_deb.sh installs and runs it).
set(CPACK_PACKAGE_NAME tokend)
set(CPACK_PACKAGE_VENDOR "The tokend authors")
set(TOKEND_PACKAGE_CONTACT "tokend maintainers <maintainers@users.noreply.h-seed-f829c705.example>"
    CACHE STRING "Maintainer of the packages (Debian's Maintainer field)")
set(CPACK_PACKAGE_CONTACT "${TOKEND_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OAuth 2.0 and OpenID Connect server that says why a token was rejected")
# One string (CPack puts a space before each line of it in the control file).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
    "tokend issues bearer tokens, validates them, and always says exactly why"
    "a token was rejected and how to fix it."
    "."
    "This package holds the OAuth 2.0 / OpenID Connect server (tokend serve,"
    "run as the systemd service tokend), the offline tools tokend inspect,"
    "keygen and sign, and libtokend, the C library that signs and verifies"
    "JWTs and explains every rejection, with its headers, pkg-config and"
    "CMake files.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git" "/build.*/" "/node_modules/" "__pycache__" "tokend-data/")
# Absolute destinations (/etc/tokend) go into the package, not onto this machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # tokend_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the ELF files (dpkg-shlibdeps), plus useradd and the helpers
# the maintainer scripts call.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "curl, libssl-dev, libjansson-dev, pkg-config")
# shlibs for libtokend.so.0; 0.x: every version may change the ABI, hence "=".
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

foreach(script postinst prerm postrm)
    configure_file(${PROJECT_SOURCE_DIR}/packaging/deb/${script}.in ${PROJECT_BINARY_DIR}/packaging/deb/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/packaging/deb/triggers ${PROJECT_BINARY_DIR}/packaging/deb/triggers COPYONLY)
set(TOKEND_DEB_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/deb/postinst
    ${PROJECT_BINARY_DIR}/packaging/deb/prerm
    ${PROJECT_BINARY_DIR}/packaging/deb/postrm
    ${PROJECT_BINARY_DIR}/packaging/deb/triggers)
# Every file under /etc is a conffile: kept, with the admin's changes, over upgrades.
if(TOKEND_INSTALL_SERVICE AND IS_ABSOLUTE "${CMAKE_INSTALL_SYSCONFDIR}")
    file(WRITE ${PROJECT_BINARY_DIR}/packaging/deb/conffiles "${TOKEND_CONF_DIR}/tokend.conf\n")
    list(APPEND TOKEND_DEB_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/packaging/deb/conffiles)
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${TOKEND_DEB_CONTROL_EXTRA}")

include(CPack)
