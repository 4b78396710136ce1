-- Creates many Prosody accounts in one process (one prosodyctl run per user would spend most of its time
-- starting up), with Prosody's own libraries so that the hashing and the storage format are Prosody's.
-- Usage: lua5.4 register.lua --config FILE DOMAIN FIRST COUNT USER_PATTERN PASSWORD_PATTERN SALT_MODE
-- (%d in the patterns becomes the user number). Existing accounts are left as they are.
--
-- SALT_MODE "random": through Prosody's user manager (the same call as `prosodyctl adduser`), a random
-- salt per account, as real registrations get.
-- SALT_MODE "shared": every account with the same password gets the same salt, written as
-- mod_auth_internal_hashed writes it. Prosody's work per SCRAM login does not change (it keeps StoredKey
-- and ServerKey, never running PBKDF2 at login), but the load generator, which caches SaltedPassword per
-- (password, salt) as RFC 5802 section 5.1 allows, derives it once instead of once per user: at Prosody's
-- 10,000 iterations that is several ms of CPU per login taken from the server under test.

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
local configmanager = require "core.configmanager"
local storagemanager = require "core.storagemanager"

local domain, first, count, user_pattern, password_pattern, salt_mode =
	arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5], arg[6] or "random"
if not (domain and first and count and user_pattern and password_pattern) or (salt_mode ~= "random" and salt_mode ~= "shared") then
	io.stderr:write("usage: register.lua --config FILE DOMAIN FIRST COUNT USER_PATTERN PASSWORD_PATTERN random|shared\n")
	os.exit(2)
end
if not prosody.hosts[domain] then
	prosody.hosts[domain] = startup.make_host(domain)
end

local write_shared
if salt_mode == "shared" then
	require "util.sasl"
	local hex = require "util.hex"
	local hash_name = configmanager.get(domain, "password_hash") or "SHA-1"
	local get_auth_db = assert(require "util.sasl.scram".hashers[hash_name], "no SCRAM hasher for " .. hash_name)
	local iterations = configmanager.get(domain, "default_iteration_count") or 10000
	storagemanager.initialize_host(domain)
	local accounts = storagemanager.open(domain, "accounts")
	local salt = "connmgr-load-shared-salt"
	local derived = {}
	write_shared = function(user, password)
		local keys = derived[password]
		if not keys then
			local ok, stored_key, server_key = get_auth_db(password, salt, iterations)
			assert(ok, stored_key)
			keys = { stored_key = hex.to(stored_key), server_key = hex.to(server_key) }
			derived[password] = keys
		end
		return accounts:set(user, {
			stored_key = keys.stored_key, server_key = keys.server_key, salt = salt, iteration_count = iterations,
		})
	end
end

local created, existing = 0, 0
for i = first, first + count - 1 do
	local n = tostring(math.floor(i))
	local user = user_pattern:gsub("%%d", n)
	local password = password_pattern:gsub("%%d", n)
	if prosodyctl.user_exists { user = user, host = domain } then
		existing = existing + 1
	else
		local ok, err
		if write_shared then
			ok, err = write_shared(user, password)
		else
			ok, err = prosodyctl.adduser { user = user, host = domain, password = password }
		end
		if not ok then
			io.stderr:write(("register.lua: %s@%s: %s\n"):format(user, domain, tostring(err)))
			os.exit(1)
		end
		created = created + 1
	end
end
print(("%d accounts created (%s salt), %d already there"):format(created, salt_mode, existing))
