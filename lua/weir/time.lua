--- Time helpers for event timestamps: UTC calendar dates to ms since the
-- Unix epoch, without the local time zone os.time would apply.
local M = {}

local floor = math.floor

--- Returns the ms since 1970-01-01T00:00:00Z of a UTC date and time.
-- Uses the days-from-civil algorithm of Howard Hinnant ("chrono-Compatible
-- Low-Level Date Algorithms"); valid for the proleptic Gregorian calendar.
-- @param year, month (1-12), day (1-31), hour, min, sec (defaults 0)
function M.utc_ms(year, month, day, hour, min, sec)
  local y = month <= 2 and year - 1 or year
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (month + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + day - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return ((days * 24 + (hour or 0)) * 60 + (min or 0)) * 60000
    + (sec or 0) * 1000
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Parses a time as Apache logs write it, "17/May/2015:10:05:03 +0000",
-- into ms since the epoch (the offset applied). Returns nil if s does not
-- have that form.
function M.parse_clf(s)
  local d, mon, y, h, mi, sec, sign, oh, om =
    s:match("^(%d%d)/(%a%a%a)/(%d%d%d%d):(%d%d):(%d%d):(%d%d) ([+-])(%d%d)(%d%d)$")
  if not d or not MONTHS[mon] then return nil end
  local offset = (tonumber(oh) * 60 + tonumber(om)) * 60000
  if sign == "-" then offset = -offset end
  return M.utc_ms(tonumber(y), MONTHS[mon], tonumber(d), tonumber(h),
    tonumber(mi), tonumber(sec)) - offset
end

--- Parses an ISO 8601 / RFC 3339 date and time into ms since the epoch
-- (UTC): "YYYY-MM-DD", then optionally a space or "T" and "HH:MM",
-- ":SS", a fraction of a second (".776"; digits past the ms are
-- truncated) and a zone: "Z", "+HH:MM", "-HHMM" or "+HH" (the offset is
-- applied). Without a zone the time is UTC. Examples:
-- "2015-09-12T00:47:35.776Z" -> 1442018855776,
-- "2015-09-12T02:47:35+02:00" and "2015-09-12 00:47:35" -> 1442018855000.
-- @return ms (an integer), or nil if s does not have that form
function M.parse_iso(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local ms = M.utc_ms(tonumber(y), tonumber(mo), tonumber(d))
  if rest == "" then return ms end
  local h, mi, sec, frac, zone =
    rest:match("^[ Tt](%d%d):(%d%d):?(%d*)([.,]?%d*)(.*)$")
  if not h then return nil end
  ms = ms + (tonumber(h) * 60 + tonumber(mi)) * 60000
    + (tonumber(sec) or 0) * 1000
  if frac ~= "" then
    if sec == "" or #frac == 1 then return nil end
    ms = ms + tonumber((frac:sub(2) .. "00"):sub(1, 3))
  end
  if zone == "" or zone == "Z" or zone == "z" then return ms end
  local sign, oh, om = zone:match("^([+-])(%d%d):?(%d?%d?)$")
  if not sign or #om == 1 then return nil end
  local offset = (tonumber(oh) * 60 + (tonumber(om) or 0)) * 60000
  return sign == "+" and ms - offset or ms + offset
end

return M
