# SPDX-License-Identifier: Apache-2.0
# Man pages: man/<name>.<section>.scd -> build/<preset>/man/<name>.<section>
# with scdoc (Debian: scdoc; scripts/deps.sh). The target `man` is part of
# the default build when scdoc is found; tests/e2e/test_man.py checks the
# pages with `man --warnings` and against the binary's --help. Packaging
# installs ${TOKEND_MAN_DIR}/*.[0-9] (TOKEND_MAN_PAGES lists them).
find_program(SCDOC_EXECUTABLE scdoc)
# Packages must not ship without their man pages: the deb preset turns this on.
option(TOKEND_REQUIRE_MAN "Fail to configure when scdoc is not found (packages)" OFF)
if(TOKEND_REQUIRE_MAN AND NOT SCDOC_EXECUTABLE)
    message(FATAL_ERROR "scdoc not found, and TOKEND_REQUIRE_MAN is on: apt-get install scdoc (scripts/deps.sh)")
endif()
file(GLOB TOKEND_MAN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/*.scd)
set(TOKEND_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(TOKEND_MAN_PAGES "")
if(SCDOC_EXECUTABLE)
    foreach(src ${TOKEND_MAN_SOURCES})
        get_filename_component(page ${src} NAME_WLE) # tokend.conf.5.scd -> tokend.conf.5
        set(out ${TOKEND_MAN_DIR}/${page})
        add_custom_command(OUTPUT ${out}
            COMMAND ${CMAKE_COMMAND} -E make_directory ${TOKEND_MAN_DIR}
            COMMAND ${CMAKE_COMMAND} -DSCDOC=${SCDOC_EXECUTABLE} -DIN=${src} -DOUT=${out}
                    -P ${PROJECT_SOURCE_DIR}/cmake/scdoc_page.cmake
            DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/scdoc_page.cmake
            COMMENT "scdoc ${page}" VERBATIM)
        list(APPEND TOKEND_MAN_PAGES ${out})
    endforeach()
    add_custom_target(man ALL DEPENDS ${TOKEND_MAN_PAGES})
else()
    message(WARNING "scdoc not found: no man pages (apt-get install scdoc; scripts/deps.sh)")
    add_custom_target(man COMMAND ${CMAKE_COMMAND} -E echo "scdoc not found: apt-get install scdoc" COMMAND false)
endif()

# `cmake --install`: the pages into man<section>/, the completions where
# bash-completion and zsh look for them.
include(GNUInstallDirs)
foreach(page ${TOKEND_MAN_PAGES})
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/completions/tokend.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME tokend)
install(FILES ${PROJECT_SOURCE_DIR}/completions/_tokend DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
