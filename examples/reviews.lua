-- Vendor reviews: the average rating of each vendor per calendar month, in
-- event time, from a file that is in no particular time order.
--   weir run examples/reviews.lua CSVFILE OUTDIR
--   weir run examples/reviews.lua spec/fixtures/anonreviews_slice.csv \
--     out/reviews
--
-- CSVFILE holds "reviewerId,vendorId,rating,date" rows, the date in UTC
-- as "2006-04-07 17:08", like elastic/examples' anonreviews.csv (unpack
-- it with bzip2 -dk). OUTDIR/part-* gets one line per vendor and month
-- (\t is a tab): the vendor, the month, the average rating and the number
-- of reviews, such as
--   0\t2006-03\t4.889\t9
local weir = require "weir"

local DAY_MS = 24 * 60 * 60 * 1000

local p = weir.pipeline { name = "reviews" }
p:read_lines(arg[1]):uid("lines")
  -- Skips the header, the one row that does not start with a digit.
  :filter(function(row) return row:match("^%d") end)
  :map(function(row)
    -- read_lines already stripped the \r of the file's CRLF line ends.
    local vendor, rating, date = row:match(
      "^%d+,(%d+),(%d+),(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d)")
    return { vendor = tonumber(vendor), rating = tonumber(rating),
             date = date }
  end)
  -- The rows are not in time order: a review can come up to 1,105 days
  -- after a newer one. A watermark 1,200 days behind the
  -- newest review keeps every month open until all of its reviews are in.
  :with_timestamps(function(review)
    return weir.time.parse_iso(review.date)
  end, { max_out_of_orderness = 1200 * DAY_MS }):uid("timestamps")
  -- Months differ in length, so they are not tumbling windows. The month
  -- goes into the key instead, and a session window with a 31-day gap
  -- gathers each key's reviews: reviews of one month are always less than
  -- 31 days apart, so they all fall into one session.
  :key_by(function(review) return { review.vendor, review.date:sub(1, 7) }
  end)
  :window(weir.session(31 * DAY_MS))
  :aggregate {
    init = function() return { sum = 0, n = 0 } end,
    add = function(acc, review)
      acc.sum = acc.sum + review.rating
      acc.n = acc.n + 1
      return acc
    end,
    merge = function(a, b)
      return { sum = a.sum + b.sum, n = a.n + b.n }
    end,
    result = function(acc, ctx)
      local vendor, month = ctx.key[1], ctx.key[2]
      return string.format("%d\t%s\t%.3f\t%d", vendor, month,
        acc.sum / acc.n, acc.n)
    end,
  }:uid("averages")
  :write_lines(arg[2]):uid("output")
p:run()
