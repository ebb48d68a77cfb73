# Release hardening: fortify, stack protector, PIE, full RELRO.
if(NOT TOKEND_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "Rel")
    add_compile_definitions(_FORTIFY_SOURCE=2)
    add_compile_options(-fstack-protector-strong -fPIE)
    add_link_options(-pie -Wl,-z,relro,-z,now)
endif()
