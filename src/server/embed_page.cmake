# cmake -DIN=page.html -DOUT=page_html.inc -P embed_page.cmake
# Writes IN as one C++ raw string literal (the page holds no ")clipfind_page").
file(READ ${IN} page)
string(FIND "${page}" ")clipfind_page" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string delimiter )clipfind_page")
endif()
file(WRITE ${OUT} "R\"clipfind_page(${page})clipfind_page\"\n")
