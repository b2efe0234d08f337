/** What a framer's `read` found; see `Frame.Status`. */
export const Status = {
  NeedHeader: 0,
  NeedBytes: 1,
  Complete: 2,
  Failed: 3
} as const
