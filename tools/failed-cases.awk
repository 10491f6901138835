# failed-cases.awk - one line per failed Catch2 v2 assertion in a ctest log
# (build/Testing/Temporary/LastTest.log): the test case and its sections,
# where it failed and the expression. tools/test prints these last, because
# --output-on-failure puts a failing case thousands of lines above the
# summary, out of reach of whoever sees only the end of a CI log.
/^-+$/ && length($0) == 79 { if (inhdr) { inhdr = 0 } else { inhdr = 1; name = "" }; next }
inhdr { s = $0; sub(/^ +/, "", s); name = (name == "" ? s : name " / " s); next }
/: FAILED:$/ {
    where = $1; sub(/:$/, "", where)
    what = ""
    if ((getline line) > 0) { what = line; sub(/^ +/, "", what) }
    if (what ~ /^due to unexpected exception/ && (getline line) > 0) {
        sub(/^ +/, "", line); what = "exception: " line
    }
    printf "FAILED: %s (%s) %s\n", name, where, what
}
