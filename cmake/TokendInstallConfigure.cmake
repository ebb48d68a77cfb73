# SPDX-License-Identifier: Apache-2.0
# TokendInstallConfigure.cmake — configure_file at install time, included by
# the install(CODE) rules of tokend_install_configured() (TokendInstall.cmake).
#
# A file that names installed paths (tokend.pc, the systemd unit, tokend.conf)
# must name the prefix it is installed to: `cmake --install --prefix DIR` and
# cpack choose it after configuring. The caller sets _tokend_in, _tokend_out
# and the configure-time values (_tokend_vars: NAME=VALUE pairs); this file
# adds those that depend on the prefix:
#   TOKEND_PC_PREFIX           the prefix
#   CMAKE_INSTALL_FULL_BINDIR  where tokend is
#   TOKEND_CONF_DIR            where tokend.conf is (SYSCONFDIR/tokend)
# each directory as install() places it: relative to the prefix, or absolute.
function(_tokend_install_configure)
    foreach(pair IN LISTS _tokend_vars)
        string(FIND "${pair}" "=" eq)
        string(SUBSTRING "${pair}" 0 ${eq} name)
        math(EXPR eq "${eq} + 1")
        string(SUBSTRING "${pair}" ${eq} -1 value)
        set(${name} "${value}")
    endforeach()
    set(TOKEND_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    foreach(d BINDIR SYSCONFDIR)
        if(IS_ABSOLUTE "${_tokend_${d}}")
            set(full_${d} "${_tokend_${d}}")
        else()
            set(full_${d} "${CMAKE_INSTALL_PREFIX}/${_tokend_${d}}")
        endif()
    endforeach()
    set(CMAKE_INSTALL_FULL_BINDIR "${full_BINDIR}")
    set(TOKEND_CONF_DIR "${full_SYSCONFDIR}/tokend")
    configure_file("${_tokend_in}" "${_tokend_out}" @ONLY)
endfunction()
_tokend_install_configure()
