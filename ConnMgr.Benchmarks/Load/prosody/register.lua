-- Creates many Prosody accounts in one process, through Prosody's own user manager (the same call as
-- `prosodyctl adduser`), so hashing and storage format are Prosody's; one prosodyctl run per user
-- would spend most of its time starting up.
-- Usage: lua5.4 register.lua --config FILE DOMAIN FIRST COUNT USER_PATTERN PASSWORD_PATTERN
-- (%d in the patterns becomes the user number). Existing accounts are left as they are.

local source_dir = "/usr/lib/prosody"
CFG_SOURCEDIR = source_dir
CFG_CONFIGDIR = "/etc/prosody"
CFG_PLUGINDIR = source_dir .. "/modules/"
CFG_DATADIR = "/var/lib/prosody"
package.path = source_dir .. "/?.lua;" .. package.path
package.cpath = source_dir .. "/?.so;" .. package.cpath

-- Prosody's argument parser takes --config and leaves the positional arguments in arg.
require "util.startup".prosodyctl()

local prosodyctl = require "util.prosodyctl"
local startup = require "util.startup"

local domain, first, count, user_pattern, password_pattern = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5]
if not (domain and first and count and user_pattern and password_pattern) then
	io.stderr:write("usage: register.lua --config FILE DOMAIN FIRST COUNT USER_PATTERN PASSWORD_PATTERN\n")
	os.exit(2)
end
if not prosody.hosts[domain] then
	prosody.hosts[domain] = startup.make_host(domain)
end

local created, existing = 0, 0
for i = first, first + count - 1 do
	local n = tostring(math.floor(i))
	local user = user_pattern:gsub("%%d", n)
	local password = password_pattern:gsub("%%d", n)
	if prosodyctl.user_exists { user = user, host = domain } then
		existing = existing + 1
	else
		local ok, err = prosodyctl.adduser { user = user, host = domain, password = password }
		if not ok then
			io.stderr:write(("register.lua: %s@%s: %s\n"):format(user, domain, tostring(err)))
			os.exit(1)
		end
		created = created + 1
	end
end
print(("%d accounts created, %d already there"):format(created, existing))
