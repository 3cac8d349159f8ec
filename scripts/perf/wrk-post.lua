-- POSTs the file named by $BODY with the headers in $HEADERS ("K: V|K: V").
wrk.method = "POST"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
for h in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local k, v = string.match(h, "^%s*(.-):%s*(.-)%s*$")
  wrk.headers[k] = v
end
