# find_package(shrink CONFIG REQUIRED) gives the target shrink::sdk (headers only) and
# the function shrink_add_plugin(NAME SOURCES...).
include(CMakeFindDependencyMacro)
find_dependency(Boost 1.74)  # Boost.DLL's alias macro, header-only
include("${CMAKE_CURRENT_LIST_DIR}/shrinkTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/shrink_plugin.cmake")
