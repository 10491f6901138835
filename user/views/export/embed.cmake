# Turns the HTML report's page (html_report.html) into a C++ string at build
# time: cmake -DIN=page.html -DOUT=page.cpp -P embed.cmake
file(READ "${IN}" page)
string(FIND "${page}" ")memtop_page\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} holds the raw string's delimiter")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by embed.cmake: do not edit.\nnamespace memtop {\nextern const char* const kHtmlReportTemplate;\nconst char* const kHtmlReportTemplate = R\"memtop_page(${page})memtop_page\";\n}  // namespace memtop\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
