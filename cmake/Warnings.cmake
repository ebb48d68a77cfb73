# SPDX-License-Identifier: Apache-2.0
# Warnings every tokend target is built with (STYLE.md "Formatting and tooling").
function(tokend_apply_warnings target)
    target_compile_options(${target} PRIVATE
        -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
        -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla
        -Wimplicit-fallthrough -Wcast-qual -Wnull-dereference -Wundef
        -Wdouble-promotion)
    if(TOKEND_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
