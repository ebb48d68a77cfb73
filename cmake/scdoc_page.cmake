# SPDX-License-Identifier: Apache-2.0
# cmake -DSCDOC=... -DIN=page.scd -DOUT=page.N -P scdoc_page.cmake
# One man page from its scdoc source. groff's man macros turn hyphenation
# and justification back on at .TH, after scdoc's .nh/.ad l: say them again
# after it, so that flags, file names and TOKEND_* variables are never split
# across lines. SOURCE_DATE_EPOCH (dpkg sets it) fixes the page's date.
execute_process(COMMAND ${SCDOC} INPUT_FILE ${IN} OUTPUT_VARIABLE page RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "scdoc ${IN}: ${err}")
endif()
string(REGEX REPLACE "(\n\\.TH [^\n]*\n)" "\\1.nh\n.ad l\n" page "${page}")
file(WRITE ${OUT} "${page}")
