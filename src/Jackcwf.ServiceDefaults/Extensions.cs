namespace Jackcwf.ServiceDefaults;
public static class Extensions { }
