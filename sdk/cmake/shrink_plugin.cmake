# shrink_add_plugin(NAME SOURCES...)
#
# Builds a stage plugin: a MODULE library linked only against the SDK, with hidden
# visibility and a version script (only the SHRINK_PLUGIN entry point is exported) and
# --no-undefined (a missing symbol fails the link, not a run). Put the resulting lib<NAME>.so in a
# directory on $SHRINK_PLUGIN_PATH or pass it with --plugin-path.
set(SHRINK_PLUGIN_VERSION_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/shrink_plugin.map)

function(shrink_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "shrink_add_plugin(${name}): no sources")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE shrink::sdk)
  set_target_properties(${name} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    PREFIX "lib")
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_link_options(${name} PRIVATE -Wl,--no-undefined -Wl,--version-script=${SHRINK_PLUGIN_VERSION_SCRIPT})
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${SHRINK_PLUGIN_VERSION_SCRIPT})
endfunction()
